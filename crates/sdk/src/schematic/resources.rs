//! Resource accessors: `client.companies().upsert_company(...)` and friends.
//!
//! These are thin, typed shortcuts over [`Client::send`]; every one of the
//! 268 operations of [`flagwire_core::schematic`] can be sent with `send`
//! directly, with the same errors and per-request options
//! ([`Client::send_with`]).

use flagwire_core::Operation;
use flagwire_core::schematic::{companies, events, features, models};

use super::client::Client;
use crate::error::Error;

type Out<O> = Result<<O as Operation>::Output, Error>;

/// Companies and users (the API groups both under `companies`).
#[derive(Debug, Clone, Copy)]
pub struct Companies<'a>(&'a Client);

/// Features and flags.
#[derive(Debug, Clone, Copy)]
pub struct Features<'a>(&'a Client);

/// Events sent through the REST API (for capture events use
/// [`Client::track`] and [`Client::identify`]).
#[derive(Debug, Clone, Copy)]
pub struct Events<'a>(&'a Client);

impl Client {
    /// Company and user operations.
    pub fn companies(&self) -> Companies<'_> {
        Companies(self)
    }

    /// Feature and flag operations.
    pub fn features(&self) -> Features<'_> {
        Features(self)
    }

    /// REST event operations.
    pub fn events(&self) -> Events<'_> {
        Events(self)
    }
}

impl Companies<'_> {
    /// `POST /companies`: creates or updates the company owning `body.keys`.
    pub async fn upsert_company(
        &self,
        body: models::UpsertCompanyRequestBody,
    ) -> Out<companies::UpsertCompany> {
        self.0.send(companies::UpsertCompany::new(body)).await
    }

    /// `GET /companies/{id}`.
    pub async fn get_company(&self, company_id: &str) -> Out<companies::GetCompany> {
        self.0.send(companies::GetCompany::new(company_id)).await
    }

    /// `GET /companies`: one page (see [`Client::paginate`] for all).
    pub async fn list_companies(
        &self,
        request: companies::ListCompanies,
    ) -> Out<companies::ListCompanies> {
        self.0.send(request).await
    }

    /// `DELETE /companies/{id}`.
    pub async fn delete_company(&self, company_id: &str) -> Out<companies::DeleteCompany> {
        self.0.send(companies::DeleteCompany::new(company_id)).await
    }

    /// `POST /users`: creates or updates the user owning `body.keys`.
    pub async fn upsert_user(
        &self,
        body: models::UpsertUserRequestBody,
    ) -> Out<companies::UpsertUser> {
        self.0.send(companies::UpsertUser::new(body)).await
    }

    /// `GET /users/{id}`.
    pub async fn get_user(&self, user_id: &str) -> Out<companies::GetUser> {
        self.0.send(companies::GetUser::new(user_id)).await
    }

    /// `GET /users`: one page.
    pub async fn list_users(&self, request: companies::ListUsers) -> Out<companies::ListUsers> {
        self.0.send(request).await
    }
}

impl Features<'_> {
    /// `POST /flags`.
    pub async fn create_flag(
        &self,
        body: models::CreateFlagRequestBody,
    ) -> Out<features::CreateFlag> {
        self.0.send(features::CreateFlag::new(body)).await
    }

    /// `GET /flags`: one page.
    pub async fn list_flags(&self, request: features::ListFlags) -> Out<features::ListFlags> {
        self.0.send(request).await
    }

    /// `GET /features`: one page.
    pub async fn list_features(
        &self,
        request: features::ListFeatures,
    ) -> Out<features::ListFeatures> {
        self.0.send(request).await
    }

    /// `POST /flags/{key}/check`, raw: errors are returned, nothing is cached
    /// and no default applies (see [`Client::check_flag`] for that).
    pub async fn check_flag(
        &self,
        key: &str,
        body: models::CheckFlagRequestBody,
    ) -> Out<features::CheckFlag> {
        self.0.send(features::CheckFlag::new(key, body)).await
    }
}

impl Events<'_> {
    /// `POST /events`: one event, synchronously.
    pub async fn create_event(
        &self,
        body: models::CreateEventRequestBody,
    ) -> Out<events::CreateEvent> {
        self.0.send(events::CreateEvent::new(body)).await
    }

    /// `POST /event-batch`.
    pub async fn create_event_batch(
        &self,
        body: models::CreateEventBatchRequestBody,
    ) -> Out<events::CreateEventBatch> {
        self.0.send(events::CreateEventBatch::new(body)).await
    }

    /// `GET /events`: one page.
    pub async fn list_events(&self, request: events::ListEvents) -> Out<events::ListEvents> {
        self.0.send(request).await
    }
}
