//! REST resource accessors: `client.contacts().list(...)`, `client.forms().get(7)` and
//! friends, one handle per resource of [`flagwire_core::esauti::api`].
//!
//! Every resource has the same six Mautic operations: `list` (`GET /{res}`, taking the
//! request value with its paging and search setters), `get(id)`, `create(body)` (`POST
//! /{res}/new`), `edit(id, body)` (`PATCH /{res}/{id}/edit`), `replace(id, body)` (`PUT
//! /{res}/{id}/edit`, which creates the item when it does not exist) and `delete(id)`.
//! [`Contacts`] adds `campaigns`, `segments`, `notes`, `add_utm`, `remove_utm` and `add_dnc`.
//! Each method has a `_with` twin taking [`RequestOptions`] last. They are thin, typed
//! shortcuts over [`Client::send`] / [`Client::send_with`], with the same errors.
//!
//! ```
//! use flagwire::esauti::Client;
//! use flagwire_core::esauti::api::contacts::ListContacts;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A stand-in server answering every request with an empty contact list.
//! let server = tower::service_fn(|req: http::Request<bytes::Bytes>| async move {
//!     assert_eq!(req.uri(), "https://tenant.example.com/api/contacts?search=ann&limit=5");
//!     assert_eq!(req.headers()["x-esauti-api-key"], "esk_example");
//!     Ok::<_, std::convert::Infallible>(http::Response::new(bytes::Bytes::from_static(
//!         br#"{"total":0,"contacts":{}}"#,
//!     )))
//! });
//! let client = Client::builder()
//!     .api_key("esk_example")
//!     .rest_url("https://tenant.example.com/api")
//!     .service(server)
//!     .build()?;
//! let page = client.contacts().list(ListContacts::new().search("ann").limit(5)).await?;
//! assert_eq!(page["total"], 0);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use flagwire_core::Operation;
use flagwire_core::esauti::api::{
    assets, campaigns, categories, companyfields, contactfields, contacts, forms, models,
    notifications, pointgroups, reports, sms,
};
use serde_json::Value;

use super::Client;
use crate::error::Error;
use crate::schematic::RequestOptions;

/// The result of sending `O`.
pub(crate) type Out<O> = Result<<O as Operation>::Output, Error>;

/// A JSON object, the body of create and edit requests.
pub type Body = BTreeMap<String, Value>;

macro_rules! resource {
    (
        $(#[$doc:meta])*
        $handle:ident, $accessor:ident, $module:ident, $path:literal,
        $list:ident, $get:ident, $create:ident, $edit:ident, $replace:ident, $delete:ident
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $handle<'a> {
            client: &'a Client,
        }

        impl Client {
            #[doc = concat!("The `", $path, "` resource.")]
            #[inline]
            pub fn $accessor(&self) -> $handle<'_> {
                $handle { client: self }
            }
        }

        impl<'a> $handle<'a> {
            /// The operation ids this handle covers, for completeness checks.
            pub const OPERATIONS: [&'static str; 6] = [
                <$module::$list as Operation>::OPERATION_ID,
                <$module::$get as Operation>::OPERATION_ID,
                <$module::$create as Operation>::OPERATION_ID,
                <$module::$edit as Operation>::OPERATION_ID,
                <$module::$replace as Operation>::OPERATION_ID,
                <$module::$delete as Operation>::OPERATION_ID,
            ];

            #[doc = concat!("`GET /", $path, "`: a page of items (Mautic paging and search).")]
            pub async fn list(&self, request: $module::$list) -> Out<$module::$list> {
                self.client.send(request).await
            }

            /// [`list`](Self::list) with per-request options.
            pub async fn list_with(
                &self,
                request: $module::$list,
                options: RequestOptions,
            ) -> Out<$module::$list> {
                self.client.send_with(request, options).await
            }

            #[doc = concat!("`GET /", $path, "/{id}`: one item.")]
            pub async fn get(&self, id: i64) -> Out<$module::$get> {
                self.client.send($module::$get::new(id)).await
            }

            /// [`get`](Self::get) with per-request options.
            pub async fn get_with(&self, id: i64, options: RequestOptions) -> Out<$module::$get> {
                self.client.send_with($module::$get::new(id), options).await
            }

            #[doc = concat!("`POST /", $path, "/new`: creates an item.")]
            pub async fn create(&self, body: impl IntoIterator<Item = (impl Into<String>, impl Into<Value>)>) -> Out<$module::$create> {
                self.client.send($module::$create::new(body)).await
            }

            /// [`create`](Self::create) with per-request options.
            pub async fn create_with(
                &self,
                body: impl IntoIterator<Item = (impl Into<String>, impl Into<Value>)>,
                options: RequestOptions,
            ) -> Out<$module::$create> {
                self.client.send_with($module::$create::new(body), options).await
            }

            #[doc = concat!("`PATCH /", $path, "/{id}/edit`: changes the given fields.")]
            pub async fn edit(&self, id: i64, body: impl IntoIterator<Item = (impl Into<String>, impl Into<Value>)>) -> Out<$module::$edit> {
                self.client.send($module::$edit::new(id, body)).await
            }

            /// [`edit`](Self::edit) with per-request options.
            pub async fn edit_with(
                &self,
                id: i64,
                body: impl IntoIterator<Item = (impl Into<String>, impl Into<Value>)>,
                options: RequestOptions,
            ) -> Out<$module::$edit> {
                self.client.send_with($module::$edit::new(id, body), options).await
            }

            #[doc = concat!("`PUT /", $path, "/{id}/edit`: replaces the item, creating it if absent.")]
            pub async fn replace(&self, id: i64, body: impl IntoIterator<Item = (impl Into<String>, impl Into<Value>)>) -> Out<$module::$replace> {
                self.client.send($module::$replace::new(id, body)).await
            }

            /// [`replace`](Self::replace) with per-request options.
            pub async fn replace_with(
                &self,
                id: i64,
                body: impl IntoIterator<Item = (impl Into<String>, impl Into<Value>)>,
                options: RequestOptions,
            ) -> Out<$module::$replace> {
                self.client.send_with($module::$replace::new(id, body), options).await
            }

            #[doc = concat!("`DELETE /", $path, "/{id}/delete`: deletes the item.")]
            pub async fn delete(&self, id: i64) -> Out<$module::$delete> {
                self.client.send($module::$delete::new(id)).await
            }

            /// [`delete`](Self::delete) with per-request options.
            pub async fn delete_with(
                &self,
                id: i64,
                options: RequestOptions,
            ) -> Out<$module::$delete> {
                self.client.send_with($module::$delete::new(id), options).await
            }
        }
    };
}

/// Calls `$callback!` once per resource with its doc, handle type, accessor name, request
/// module, path and the six request types (list, get, create, edit, replace, delete), so the
/// async and the blocking accessors are generated from one list.
macro_rules! for_each_resource {
    ($callback:ident) => {
        $callback!(
            /// Assets (`/assets`): request types in [`flagwire_core::esauti::api::assets`].
            Assets, assets, assets, "assets",
            ListAssets, GetAsset, CreateAsset, EditAsset, ReplaceAsset, DeleteAsset
        );
        $callback!(
            /// Campaigns (`/campaigns`): request types in
            /// [`flagwire_core::esauti::api::campaigns`].
            Campaigns, campaigns, campaigns, "campaigns",
            ListCampaigns, GetCampaign, CreateCampaign, EditCampaign, ReplaceCampaign,
            DeleteCampaign
        );
        $callback!(
            /// Categories (`/categories`): request types in
            /// [`flagwire_core::esauti::api::categories`].
            Categories, categories, categories, "categories",
            ListCategories, GetCategory, CreateCategory, EditCategory, ReplaceCategory,
            DeleteCategory
        );
        $callback!(
            /// Contacts (`/contacts`): request types in [`flagwire_core::esauti::api::contacts`].
            Contacts, contacts, contacts, "contacts",
            ListContacts, GetContact, CreateContact, EditContact, ReplaceContact, DeleteContact
        );
        $callback!(
            /// Company fields (`/fields/company`): request types in
            /// [`flagwire_core::esauti::api::companyfields`].
            CompanyFields, company_fields, companyfields, "fields/company",
            ListCompanyFields, GetCompanyField, CreateCompanyField, EditCompanyField,
            ReplaceCompanyField, DeleteCompanyField
        );
        $callback!(
            /// Contact fields (`/fields/contact`): request types in
            /// [`flagwire_core::esauti::api::contactfields`].
            ContactFields, contact_fields, contactfields, "fields/contact",
            ListContactFields, GetContactField, CreateContactField, EditContactField,
            ReplaceContactField, DeleteContactField
        );
        $callback!(
            /// Forms (`/forms`): request types in [`flagwire_core::esauti::api::forms`].
            Forms, forms, forms, "forms",
            ListForms, GetForm, CreateForm, EditForm, ReplaceForm, DeleteForm
        );
        $callback!(
            /// Notifications (`/notifications`): request types in
            /// [`flagwire_core::esauti::api::notifications`].
            Notifications, notifications, notifications, "notifications",
            ListNotifications, GetNotification, CreateNotification, EditNotification,
            ReplaceNotification, DeleteNotification
        );
        $callback!(
            /// Point groups (`/pointgroups`): request types in
            /// [`flagwire_core::esauti::api::pointgroups`].
            PointGroups, point_groups, pointgroups, "pointgroups",
            ListPointGroups, GetPointGroup, CreatePointGroup, EditPointGroup, ReplacePointGroup,
            DeletePointGroup
        );
        $callback!(
            /// Reports (`/reports`): request types in [`flagwire_core::esauti::api::reports`].
            Reports, reports, reports, "reports",
            ListReports, GetReport, CreateReport, EditReport, ReplaceReport, DeleteReport
        );
        $callback!(
            /// Text messages (`/smses`): request types in [`flagwire_core::esauti::api::sms`].
            Sms, sms, sms, "smses",
            ListSmses, GetSms, CreateSms, EditSms, ReplaceSms, DeleteSms
        );
    };
}
pub(crate) use for_each_resource;

for_each_resource!(resource);

impl Contacts<'_> {
    /// The contact extras' operation ids, for completeness checks.
    pub const EXTRA_OPERATIONS: [&'static str; 6] = [
        <contacts::GetContactCampaigns as Operation>::OPERATION_ID,
        <contacts::GetContactSegments as Operation>::OPERATION_ID,
        <contacts::GetContactNotes as Operation>::OPERATION_ID,
        <contacts::AddContactUtm as Operation>::OPERATION_ID,
        <contacts::RemoveContactUtm as Operation>::OPERATION_ID,
        <contacts::AddContactDnc as Operation>::OPERATION_ID,
    ];

    /// `GET /contacts/{id}/campaigns`: the campaigns a contact is in.
    pub async fn campaigns(&self, id: i64) -> Out<contacts::GetContactCampaigns> {
        self.client
            .send(contacts::GetContactCampaigns::new(id))
            .await
    }

    /// [`campaigns`](Self::campaigns) with per-request options.
    pub async fn campaigns_with(
        &self,
        id: i64,
        options: RequestOptions,
    ) -> Out<contacts::GetContactCampaigns> {
        self.client
            .send_with(contacts::GetContactCampaigns::new(id), options)
            .await
    }

    /// `GET /contacts/{id}/segments`: the segments a contact is in.
    pub async fn segments(&self, id: i64) -> Out<contacts::GetContactSegments> {
        self.client
            .send(contacts::GetContactSegments::new(id))
            .await
    }

    /// [`segments`](Self::segments) with per-request options.
    pub async fn segments_with(
        &self,
        id: i64,
        options: RequestOptions,
    ) -> Out<contacts::GetContactSegments> {
        self.client
            .send_with(contacts::GetContactSegments::new(id), options)
            .await
    }

    /// `GET /contacts/{id}/notes`: a page of a contact's notes (build the request with
    /// `GetContactNotes::new(id)` and its paging setters).
    pub async fn notes(
        &self,
        request: contacts::GetContactNotes,
    ) -> Out<contacts::GetContactNotes> {
        self.client.send(request).await
    }

    /// [`notes`](Self::notes) with per-request options.
    pub async fn notes_with(
        &self,
        request: contacts::GetContactNotes,
        options: RequestOptions,
    ) -> Out<contacts::GetContactNotes> {
        self.client.send_with(request, options).await
    }

    /// `POST /contacts/{id}/utm/add`: records UTM tags on a contact.
    pub async fn add_utm(
        &self,
        id: i64,
        body: impl IntoIterator<Item = (impl Into<String>, impl Into<Value>)>,
    ) -> Out<contacts::AddContactUtm> {
        self.client
            .send(contacts::AddContactUtm::new(id, body))
            .await
    }

    /// [`add_utm`](Self::add_utm) with per-request options.
    pub async fn add_utm_with(
        &self,
        id: i64,
        body: impl IntoIterator<Item = (impl Into<String>, impl Into<Value>)>,
        options: RequestOptions,
    ) -> Out<contacts::AddContactUtm> {
        self.client
            .send_with(contacts::AddContactUtm::new(id, body), options)
            .await
    }

    /// `POST /contacts/{id}/utm/{utm_id}/remove`: removes a UTM record (a `POST`, as Mautic
    /// routes it).
    pub async fn remove_utm(&self, id: i64, utm_id: i64) -> Out<contacts::RemoveContactUtm> {
        self.client
            .send(contacts::RemoveContactUtm::new(id, utm_id))
            .await
    }

    /// [`remove_utm`](Self::remove_utm) with per-request options.
    pub async fn remove_utm_with(
        &self,
        id: i64,
        utm_id: i64,
        options: RequestOptions,
    ) -> Out<contacts::RemoveContactUtm> {
        self.client
            .send_with(contacts::RemoveContactUtm::new(id, utm_id), options)
            .await
    }

    /// `POST /contacts/{id}/dnc/{channel}/add`: marks a contact "do not contact" on a channel
    /// (`email`, `sms`…).
    pub async fn add_dnc(
        &self,
        id: i64,
        channel: impl Into<String>,
        body: models::DoNotContact,
    ) -> Out<contacts::AddContactDnc> {
        self.client
            .send(contacts::AddContactDnc::new(id, channel, body))
            .await
    }

    /// [`add_dnc`](Self::add_dnc) with per-request options.
    pub async fn add_dnc_with(
        &self,
        id: i64,
        channel: impl Into<String>,
        body: models::DoNotContact,
        options: RequestOptions,
    ) -> Out<contacts::AddContactDnc> {
        self.client
            .send_with(contacts::AddContactDnc::new(id, channel, body), options)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use flagwire_core::esauti::api::OPERATIONS;

    use super::*;

    #[test]
    fn every_operation_has_exactly_one_accessor() {
        let mut ids: Vec<&str> = Vec::new();
        for ops in [
            Assets::OPERATIONS,
            Campaigns::OPERATIONS,
            Categories::OPERATIONS,
            Contacts::OPERATIONS,
            Contacts::EXTRA_OPERATIONS,
            CompanyFields::OPERATIONS,
            ContactFields::OPERATIONS,
            Forms::OPERATIONS,
            Notifications::OPERATIONS,
            PointGroups::OPERATIONS,
            Reports::OPERATIONS,
            Sms::OPERATIONS,
        ] {
            ids.extend(ops);
        }
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(ids.len(), unique.len(), "an operation has two accessors");
        let all: BTreeSet<&str> = OPERATIONS.iter().map(|op| op.id).collect();
        assert_eq!(unique, all);
        assert_eq!(ids.len(), 72);
    }
}
