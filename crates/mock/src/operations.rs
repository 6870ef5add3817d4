//! Recognition of platform operations that the emulator does not emulate.
//!
//! The table lists every operation of the Schematic API description in
//! `crates/core/api/schematic.json` (operation ID, method, path template).

use http::Method;

/// (operation ID, method, path template) of every platform operation.
pub(crate) const OPERATIONS: &[(&str, &str, &str)] = &[
    ("listAccountMembers", "GET", "/account-members"),
    ("countAccountMembers", "GET", "/account-members/count"),
    (
        "getAccountMember",
        "GET",
        "/account-members/{account_member_id}",
    ),
    ("listApiKeys", "GET", "/api-keys"),
    ("createApiKey", "POST", "/api-keys"),
    ("countApiKeys", "GET", "/api-keys/count"),
    ("getApiKey", "GET", "/api-keys/{api_key_id}"),
    ("updateApiKey", "PUT", "/api-keys/{api_key_id}"),
    ("deleteApiKey", "DELETE", "/api-keys/{api_key_id}"),
    ("listAuditLogs", "GET", "/audit-log"),
    ("countAuditLogs", "GET", "/audit-log/count"),
    ("getAuditLog", "GET", "/audit-log/{audit_log_id}"),
    ("listCoupons", "GET", "/billing/coupons"),
    ("upsertBillingCoupon", "POST", "/billing/coupons"),
    (
        "deleteBillingCoupon",
        "DELETE",
        "/billing/coupons/{billing_id}",
    ),
    ("listBillingCredits", "GET", "/billing/credits"),
    ("createBillingCredit", "POST", "/billing/credits"),
    (
        "listCompanyCreditBalances",
        "GET",
        "/billing/credits/balance",
    ),
    ("listCreditBundles", "GET", "/billing/credits/bundles"),
    ("createCreditBundle", "POST", "/billing/credits/bundles"),
    (
        "countCreditBundles",
        "GET",
        "/billing/credits/bundles/count",
    ),
    (
        "getCreditBundle",
        "GET",
        "/billing/credits/bundles/{bundle_id}",
    ),
    (
        "updateCreditBundleDetails",
        "PUT",
        "/billing/credits/bundles/{bundle_id}",
    ),
    (
        "deleteCreditBundle",
        "DELETE",
        "/billing/credits/bundles/{bundle_id}",
    ),
    ("countBillingCredits", "GET", "/billing/credits/count"),
    (
        "grantBillingCreditsToCompany",
        "POST",
        "/billing/credits/grants/company",
    ),
    (
        "countCompanyGrants",
        "GET",
        "/billing/credits/grants/company/count",
    ),
    (
        "listCompanyGrants",
        "GET",
        "/billing/credits/grants/company/list",
    ),
    (
        "countBillingCreditsGrants",
        "GET",
        "/billing/credits/grants/count",
    ),
    ("listGrantsForCredit", "GET", "/billing/credits/grants/list"),
    (
        "zeroOutGrant",
        "PUT",
        "/billing/credits/grants/{grant_id}/zero-out",
    ),
    ("acquireCreditLease", "POST", "/billing/credits/lease"),
    (
        "extendCreditLease",
        "PUT",
        "/billing/credits/lease/{lease_id}/extend",
    ),
    (
        "releaseCreditLease",
        "PUT",
        "/billing/credits/lease/{lease_id}/release",
    ),
    (
        "listBillingPlanCreditGrants",
        "GET",
        "/billing/credits/plan-grants",
    ),
    (
        "createBillingPlanCreditGrant",
        "POST",
        "/billing/credits/plan-grants",
    ),
    (
        "countBillingPlanCreditGrants",
        "GET",
        "/billing/credits/plan-grants/count",
    ),
    (
        "getSingleBillingPlanCreditGrant",
        "GET",
        "/billing/credits/plan-grants/{plan_grant_id}",
    ),
    (
        "updateBillingPlanCreditGrant",
        "PUT",
        "/billing/credits/plan-grants/{plan_grant_id}",
    ),
    (
        "deleteBillingPlanCreditGrant",
        "DELETE",
        "/billing/credits/plan-grants/{plan_grant_id}",
    ),
    (
        "getSingleBillingCredit",
        "GET",
        "/billing/credits/{credit_id}",
    ),
    ("updateBillingCredit", "PUT", "/billing/credits/{credit_id}"),
    (
        "softDeleteBillingCredit",
        "DELETE",
        "/billing/credits/{credit_id}",
    ),
    ("upsertBillingCustomer", "POST", "/billing/customer/upsert"),
    (
        "deleteBillingCustomer",
        "DELETE",
        "/billing/customer/{billing_id}",
    ),
    (
        "listCustomersWithSubscriptions",
        "GET",
        "/billing/customers",
    ),
    ("countCustomers", "GET", "/billing/customers/count"),
    ("listInvoices", "GET", "/billing/invoices"),
    ("upsertInvoice", "POST", "/billing/invoices"),
    (
        "deleteBillingInvoice",
        "DELETE",
        "/billing/invoices/{billing_id}",
    ),
    ("listMeters", "GET", "/billing/meter"),
    ("upsertBillingMeter", "POST", "/billing/meter/upsert"),
    ("listPaymentMethods", "GET", "/billing/payment-methods"),
    ("upsertPaymentMethod", "POST", "/billing/payment-methods"),
    (
        "deletePaymentMethodByExternalID",
        "DELETE",
        "/billing/payment-methods/{billing_id}",
    ),
    ("listBillingPrices", "GET", "/billing/price"),
    ("upsertBillingPrice", "POST", "/billing/price/upsert"),
    ("listBillingProductPrices", "GET", "/billing/product/prices"),
    (
        "deleteProductPrice",
        "DELETE",
        "/billing/product/prices/{billing_id}",
    ),
    ("upsertBillingProduct", "POST", "/billing/product/upsert"),
    (
        "deleteBillingProduct",
        "DELETE",
        "/billing/product/{billing_id}",
    ),
    ("listBillingProducts", "GET", "/billing/products"),
    ("countBillingProducts", "GET", "/billing/products/count"),
    (
        "upsertBillingSubscription",
        "POST",
        "/billing/subscription/upsert",
    ),
    ("listCatalogs", "GET", "/catalogs"),
    ("createCatalog", "POST", "/catalogs"),
    ("getCatalog", "GET", "/catalogs/{catalog_id}"),
    ("updateCatalog", "PUT", "/catalogs/{catalog_id}"),
    ("deleteCatalog", "DELETE", "/catalogs/{catalog_id}"),
    (
        "getConfiguration",
        "GET",
        "/catalogs/{catalog_id}/configuration",
    ),
    (
        "updateConfiguration",
        "PUT",
        "/catalogs/{catalog_id}/configuration",
    ),
    (
        "getCreditBundlesInCatalog",
        "GET",
        "/catalogs/{catalog_id}/credit-bundles",
    ),
    (
        "addCreditBundle",
        "POST",
        "/catalogs/{catalog_id}/credit-bundles/{credit_bundle_id}",
    ),
    (
        "removeCreditBundle",
        "DELETE",
        "/catalogs/{catalog_id}/credit-bundles/{credit_bundle_id}",
    ),
    (
        "getDerivedFeatures",
        "GET",
        "/catalogs/{catalog_id}/features",
    ),
    ("getPlansInCatalog", "GET", "/catalogs/{catalog_id}/plans"),
    ("addPlan", "POST", "/catalogs/{catalog_id}/plans/{plan_id}"),
    (
        "removePlan",
        "DELETE",
        "/catalogs/{catalog_id}/plans/{plan_id}",
    ),
    ("checkoutInternal", "POST", "/checkout-internal"),
    ("getCheckoutData", "POST", "/checkout-internal/data"),
    (
        "previewCheckoutInternal",
        "POST",
        "/checkout-internal/preview",
    ),
    ("listCompanies", "GET", "/companies"),
    ("upsertCompany", "POST", "/companies"),
    ("countCompanies", "GET", "/companies/count"),
    ("createCompany", "POST", "/companies/create"),
    ("deleteCompanyByKeys", "POST", "/companies/delete"),
    ("lookupCompany", "GET", "/companies/lookup"),
    ("getCompany", "GET", "/companies/{company_id}"),
    ("deleteCompany", "DELETE", "/companies/{company_id}"),
    (
        "getCompanyBillingDetails",
        "GET",
        "/companies/{company_id}/billing-details",
    ),
    (
        "updateCompanyBillingDetails",
        "PUT",
        "/companies/{company_id}/billing-details",
    ),
    ("getCompanyBillingEntity", "GET", "/company-billing-entity"),
    (
        "getBillingEntityChildSubscriptions",
        "GET",
        "/company-billing-entity-subscriptions",
    ),
    ("listCompanyMemberships", "GET", "/company-memberships"),
    (
        "getOrCreateCompanyMembership",
        "POST",
        "/company-memberships",
    ),
    (
        "deleteCompanyMembership",
        "DELETE",
        "/company-memberships/{company_membership_id}",
    ),
    ("listCompanyOverrides", "GET", "/company-overrides"),
    ("createCompanyOverride", "POST", "/company-overrides"),
    ("countCompanyOverrides", "GET", "/company-overrides/count"),
    (
        "getCompanyOverride",
        "GET",
        "/company-overrides/{company_override_id}",
    ),
    (
        "updateCompanyOverride",
        "PUT",
        "/company-overrides/{company_override_id}",
    ),
    (
        "deleteCompanyOverride",
        "DELETE",
        "/company-overrides/{company_override_id}",
    ),
    ("updateCompanyPlans", "PUT", "/company-plans/{company_id}"),
    (
        "getActiveCompanySubscription",
        "GET",
        "/company-subscriptions",
    ),
    ("upsertCompanyTrait", "POST", "/company-traits"),
    ("listComponents", "GET", "/components"),
    ("createComponent", "POST", "/components"),
    ("countComponents", "GET", "/components/count"),
    ("previewComponentData", "GET", "/components/preview-data"),
    ("getComponent", "GET", "/components/{component_id}"),
    ("updateComponent", "PUT", "/components/{component_id}"),
    ("deleteComponent", "DELETE", "/components/{component_id}"),
    ("bindCatalog", "PUT", "/components/{component_id}/catalog"),
    ("listCustomPlanBillings", "GET", "/custom-plan-billings"),
    (
        "markCustomPlanBillingPaid",
        "PUT",
        "/custom-plan-billings/{custom_plan_billing_id}/mark-paid",
    ),
    (
        "retryCustomPlanBilling",
        "PUT",
        "/custom-plan-billings/{custom_plan_billing_id}/retry",
    ),
    ("createCustomPlanBundle", "POST", "/custom-plan-bundles"),
    ("createCustomPlan", "POST", "/custom-plans"),
    ("listDataExports", "GET", "/data-exports"),
    ("createDataExport", "POST", "/data-exports"),
    ("getDataExport", "GET", "/data-exports/{data_export_id}"),
    (
        "getDataExportArtifact",
        "GET",
        "/data-exports/{data_export_id}/artifact",
    ),
    ("listEntityKeyDefinitions", "GET", "/entity-key-definitions"),
    (
        "countEntityKeyDefinitions",
        "GET",
        "/entity-key-definitions/count",
    ),
    (
        "deleteEntityKeyDefinition",
        "DELETE",
        "/entity-key-definitions/{entity_key_definition_id}",
    ),
    ("countEntityKeys", "GET", "/entity-keys/count"),
    (
        "listEntityTraitDefinitions",
        "GET",
        "/entity-trait-definitions",
    ),
    (
        "getOrCreateEntityTraitDefinition",
        "POST",
        "/entity-trait-definitions",
    ),
    (
        "countEntityTraitDefinitions",
        "GET",
        "/entity-trait-definitions/count",
    ),
    (
        "getEntityTraitDefinition",
        "GET",
        "/entity-trait-definitions/{entity_trait_definition_id}",
    ),
    (
        "updateEntityTraitDefinition",
        "PUT",
        "/entity-trait-definitions/{entity_trait_definition_id}",
    ),
    (
        "deleteEntityTraitDefinition",
        "DELETE",
        "/entity-trait-definitions/{entity_trait_definition_id}",
    ),
    (
        "getEntityTraitDefinitionUsage",
        "GET",
        "/entity-trait-definitions/{entity_trait_definition_id}/usage",
    ),
    ("getEntityTraitValues", "GET", "/entity-trait-values"),
    ("countEntityTraits", "GET", "/entity-traits/count"),
    ("listEnvironments", "GET", "/environments"),
    ("createEnvironment", "POST", "/environments"),
    ("getEnvironment", "GET", "/environments/{environment_id}"),
    ("updateEnvironment", "PUT", "/environments/{environment_id}"),
    (
        "deleteEnvironment",
        "DELETE",
        "/environments/{environment_id}",
    ),
    ("createEventBatch", "POST", "/event-batch"),
    ("getEventSummaries", "GET", "/event-types"),
    ("listEvents", "GET", "/events"),
    ("createEvent", "POST", "/events"),
    ("getEvent", "GET", "/events/{event_id}"),
    ("listFeatureCompanies", "GET", "/feature-companies"),
    ("countFeatureCompanies", "GET", "/feature-companies/count"),
    ("listFeatureUsage", "GET", "/feature-usage"),
    ("listFeatureUsageHistory", "GET", "/feature-usage-history"),
    (
        "getFeatureUsageTimeSeries",
        "GET",
        "/feature-usage-timeseries",
    ),
    ("countFeatureUsage", "GET", "/feature-usage/count"),
    ("listFeatureUsers", "GET", "/feature-users"),
    ("countFeatureUsers", "GET", "/feature-users/count"),
    ("listFeatures", "GET", "/features"),
    ("createFeature", "POST", "/features"),
    (
        "upsertFeatureForBillingProduct",
        "POST",
        "/features/billing-linked",
    ),
    ("countFeatures", "GET", "/features/count"),
    ("getFeature", "GET", "/features/{feature_id}"),
    ("updateFeature", "PUT", "/features/{feature_id}"),
    ("deleteFeature", "DELETE", "/features/{feature_id}"),
    ("listFlags", "GET", "/flags"),
    ("createFlag", "POST", "/flags"),
    ("checkFlags", "POST", "/flags/check"),
    ("checkFlagsBulk", "POST", "/flags/check-bulk"),
    ("countFlags", "GET", "/flags/count"),
    ("getFlag", "GET", "/flags/{flag_id}"),
    ("updateFlag", "PUT", "/flags/{flag_id}"),
    ("deleteFlag", "DELETE", "/flags/{flag_id}"),
    ("updateFlagRules", "PUT", "/flags/{flag_id}/rules"),
    ("checkFlag", "POST", "/flags/{key}/check"),
    ("getActivity", "GET", "/insights/activity"),
    (
        "getEnvironmentFeatureUsageTimeSeries",
        "GET",
        "/insights/feature-usage-timeseries",
    ),
    ("getPlanGrowth", "GET", "/insights/plan-growth"),
    ("getSummary", "GET", "/insights/summary"),
    ("getTopFeaturesByUsage", "GET", "/insights/top-features"),
    (
        "getEnvironmentTraitUsageTimeSeries",
        "GET",
        "/insights/trait-usage-timeseries",
    ),
    (
        "runIntegration",
        "GET",
        "/integration/start/{integration_id}",
    ),
    ("listIntegrations", "GET", "/integrations"),
    ("installIntegration", "POST", "/integrations/install"),
    ("startDataImport", "POST", "/integrations/start-data-import"),
    (
        "loadSampleDataSet",
        "GET",
        "/integrations/stripe/dataset-sample-v2",
    ),
    (
        "assumeStripeInstalled",
        "POST",
        "/integrations/stripe/v2/assume-installed",
    ),
    ("installStripe", "POST", "/integrations/stripe/v2/install"),
    (
        "uninstallIntegration",
        "DELETE",
        "/integrations/uninstall/{integration_id}",
    ),
    (
        "getIntegrationWebhookUrl",
        "GET",
        "/integrations/{type}/webhook-url",
    ),
    ("listLicenses", "GET", "/licenses"),
    ("countLicenses", "GET", "/licenses/count"),
    ("getSingleLicense", "GET", "/licenses/{license_id}"),
    ("managePlan", "POST", "/manage-plan"),
    ("previewManagePlan", "POST", "/manage-plan/preview"),
    (
        "cancelSubscription",
        "POST",
        "/manage-plan/subscription/cancel",
    ),
    ("getOnboardingState", "GET", "/onboarding-state"),
    ("updateOnboardingState", "POST", "/onboarding-state"),
    ("createPlanBundle", "POST", "/plan-bundles"),
    ("updatePlanBundle", "PUT", "/plan-bundles/{plan_id}"),
    ("listPlanChanges", "GET", "/plan-changes"),
    ("getPlanChange", "GET", "/plan-changes/{plan_change_id}"),
    ("listPlanEntitlements", "GET", "/plan-entitlements"),
    ("createPlanEntitlement", "POST", "/plan-entitlements"),
    (
        "upsertPlanEntitlementForBillingProduct",
        "POST",
        "/plan-entitlements/billing-linked",
    ),
    ("countPlanEntitlements", "GET", "/plan-entitlements/count"),
    (
        "duplicatePlanEntitlements",
        "POST",
        "/plan-entitlements/duplicate",
    ),
    (
        "getPlanEntitlement",
        "GET",
        "/plan-entitlements/{plan_entitlement_id}",
    ),
    (
        "updatePlanEntitlement",
        "PUT",
        "/plan-entitlements/{plan_entitlement_id}",
    ),
    (
        "deletePlanEntitlement",
        "DELETE",
        "/plan-entitlements/{plan_entitlement_id}",
    ),
    ("getPlanGroup", "GET", "/plan-groups"),
    ("createPlanGroup", "POST", "/plan-groups"),
    ("updatePlanGroup", "PUT", "/plan-groups/{plan_group_id}"),
    ("listPlanTraits", "GET", "/plan-traits"),
    ("updatePlanTraitsBulk", "POST", "/plan-traits/bulk"),
    ("countPlanTraits", "GET", "/plan-traits/count"),
    ("getPlanTrait", "GET", "/plan-traits/{plan_trait_id}"),
    (
        "listCompanyMigrations",
        "GET",
        "/plan-version-company-migrations",
    ),
    (
        "countCompanyMigrations",
        "GET",
        "/plan-version-company-migrations/count",
    ),
    (
        "retryCompanyMigration",
        "POST",
        "/plan-version-company-migrations/{plan_version_company_migration_id}/retry",
    ),
    ("listMigrations", "GET", "/plan-version-migrations"),
    ("createMigration", "POST", "/plan-version-migrations"),
    ("countMigrations", "GET", "/plan-version-migrations/count"),
    (
        "previewMigration",
        "POST",
        "/plan-version-migrations/preview",
    ),
    (
        "getMigration",
        "GET",
        "/plan-version-migrations/{plan_version_migration_id}",
    ),
    (
        "retryMigration",
        "POST",
        "/plan-version-migrations/{plan_version_migration_id}/retry",
    ),
    ("listPlans", "GET", "/plans"),
    ("createPlan", "POST", "/plans"),
    (
        "upsertPlanForBillingProduct",
        "POST",
        "/plans/billing-linked",
    ),
    (
        "listBillingProductMatchCompanies",
        "GET",
        "/plans/billing-product-match-companies",
    ),
    (
        "countBillingProductMatchCompanies",
        "GET",
        "/plans/billing-product-match-companies/count",
    ),
    ("countPlans", "GET", "/plans/count"),
    ("listPlanIssues", "GET", "/plans/issues"),
    (
        "deletePlanVersion",
        "DELETE",
        "/plans/version/{plan_version_id}",
    ),
    (
        "publishPlanVersion",
        "PUT",
        "/plans/version/{plan_version_id}/publish",
    ),
    ("getPlan", "GET", "/plans/{plan_id}"),
    ("updatePlan", "PUT", "/plans/{plan_id}"),
    ("deletePlan", "DELETE", "/plans/{plan_id}"),
    (
        "upsertBillingProductPlan",
        "PUT",
        "/plans/{plan_id}/billing_products",
    ),
    ("getPublicPlans", "GET", "/public/plans"),
    ("quickstart", "POST", "/quickstart"),
    ("listScheduledCheckouts", "GET", "/scheduled-checkout"),
    ("createScheduledCheckout", "POST", "/scheduled-checkout"),
    (
        "getScheduledCheckout",
        "GET",
        "/scheduled-checkout/{scheduled_checkout_id}",
    ),
    (
        "updateScheduledCheckout",
        "PUT",
        "/scheduled-checkout/{scheduled_checkout_id}",
    ),
    ("getSegmentIntegrationStatus", "GET", "/segment-integration"),
    (
        "updateCustomerSubscriptionTrialEnd",
        "PUT",
        "/subscription/{subscription_id}/edit-trial-end",
    ),
    (
        "issueTemporaryAccessToken",
        "POST",
        "/temporary-access-tokens",
    ),
    ("getFeatureUsageByCompany", "GET", "/usage-by-company"),
    ("upsertUserTrait", "POST", "/user-traits"),
    ("getUserUsageByCompany", "GET", "/user-usage-by-company"),
    ("getUserUsageDetail", "GET", "/user-usage-detail"),
    ("listUsers", "GET", "/users"),
    ("upsertUser", "POST", "/users"),
    ("countUsers", "GET", "/users/count"),
    ("createUser", "POST", "/users/create"),
    ("deleteUserByKeys", "POST", "/users/delete"),
    ("lookupUser", "GET", "/users/lookup"),
    ("getUser", "GET", "/users/{user_id}"),
    ("deleteUser", "DELETE", "/users/{user_id}"),
    ("listCreditEventLedger", "GET", "/v2/billing/credits/ledger"),
    (
        "countCreditEventLedger",
        "GET",
        "/v2/billing/credits/ledger/count",
    ),
    ("listWebhookEvents", "GET", "/webhook-events"),
    ("countWebhookEvents", "GET", "/webhook-events/count"),
    (
        "getWebhookEvent",
        "GET",
        "/webhook-events/{webhook_event_id}",
    ),
    ("listWebhooks", "GET", "/webhooks"),
    ("createWebhook", "POST", "/webhooks"),
    ("countWebhooks", "GET", "/webhooks/count"),
    ("getWebhook", "GET", "/webhooks/{webhook_id}"),
    ("updateWebhook", "PUT", "/webhooks/{webhook_id}"),
    ("deleteWebhook", "DELETE", "/webhooks/{webhook_id}"),
    (
        "sendTestWebhookAction",
        "POST",
        "/webhooks/{webhook_id}/test",
    ),
    ("getWhoAmI", "GET", "/whoami"),
];

fn template_matches(template: &str, path: &str) -> bool {
    let mut t = template.split('/').filter(|s| !s.is_empty());
    let mut p = path.split('/').filter(|s| !s.is_empty());
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) => {
                if !(ts.starts_with('{') && ts.ends_with('}')) && ts != ps {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The operation ID of the platform operation at `method` + `path`, if any.
/// Literal segments win over parameters (`/companies/count` is
/// `countCompanies`, not `getCompany`).
pub(crate) fn lookup(method: &Method, path: &str) -> Option<&'static str> {
    let mut best: Option<(&'static str, usize)> = None;
    for (id, m, template) in OPERATIONS {
        if *m != method.as_str() || !template_matches(template, path) {
            continue;
        }
        let literals = template
            .split('/')
            .filter(|s| !s.is_empty() && !s.starts_with('{'))
            .count();
        if best.is_none_or(|(_, n)| literals > n) {
            best = Some((id, literals));
        }
    }
    best.map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_every_operation() {
        assert_eq!(OPERATIONS.len(), 268);
    }

    #[test]
    fn literal_segments_win() {
        assert_eq!(
            lookup(&Method::GET, "/companies/count"),
            Some("countCompanies")
        );
        assert_eq!(
            lookup(&Method::GET, "/companies/comp_1"),
            Some("getCompany")
        );
        assert_eq!(
            lookup(&Method::POST, "/flags/my-flag/check"),
            Some("checkFlag")
        );
        assert_eq!(lookup(&Method::GET, "/no-such-thing"), None);
        assert_eq!(lookup(&Method::PATCH, "/companies"), None);
    }

    #[test]
    fn every_emulated_route_is_a_platform_operation() {
        for op in crate::schematic::EMULATED {
            assert!(
                OPERATIONS.iter().any(|(id, _, _)| id == op),
                "{op} is not in the operation table"
            );
        }
    }
}
