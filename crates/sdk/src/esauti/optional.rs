//! Settings that may be absent, so that a value read from the environment
//! can be passed as it is.

/// Text for a builder setting that may be absent: `&str`, `String`,
/// `&String`, or an `Option` of those. `None` leaves the setting as if it had
/// not been called, so `std::env::var("ESAUTI_HMAC_SECRET").ok()` needs no
/// `if let` around the call.
///
/// ```
/// use flagwire::esauti::Client;
///
/// let client = Client::builder()
///     .api_key("key")
///     .hmac_secret(std::env::var("FLAGWIRE_DOC_UNSET_SECRET").ok()) // None: no signing
///     .rest_url("https://tenant.example.com/api")
///     .build()?;
/// # Ok::<(), flagwire::Error>(())
/// ```
pub trait IntoOptionalString {
    /// The text, or `None`.
    fn into_optional_string(self) -> Option<String>;
}

impl IntoOptionalString for String {
    fn into_optional_string(self) -> Option<String> {
        Some(self)
    }
}

impl IntoOptionalString for &str {
    fn into_optional_string(self) -> Option<String> {
        Some(self.to_owned())
    }
}

impl IntoOptionalString for &String {
    fn into_optional_string(self) -> Option<String> {
        Some(self.clone())
    }
}

impl IntoOptionalString for std::borrow::Cow<'_, str> {
    fn into_optional_string(self) -> Option<String> {
        Some(self.into_owned())
    }
}

impl<T: IntoOptionalString> IntoOptionalString for Option<T> {
    fn into_optional_string(self) -> Option<String> {
        self.and_then(IntoOptionalString::into_optional_string)
    }
}
