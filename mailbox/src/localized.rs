//! Errors a person may see, in both languages: a leaf module, so the domain types
//! that define their own errors (facility codes) need not import the crate's error.

/// An error a person may see: a stable machine code, Japanese text for pages,
/// English (the `Display` impl) for logs and the API.
pub trait Localized: std::fmt::Display {
    fn code(&self) -> &'static str;
    fn message_ja(&self) -> String;
    fn message_en(&self) -> String {
        self.to_string()
    }
}
