//! E-mail addresses: validated once, compared case-insensitively.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("Enter an e-mail address.")]
    Empty,
    #[error("Enter a valid e-mail address, like name@example.com.")]
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    as_entered: String,
    normalized: String,
}

impl Email {
    const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        // Only a bare address: `Name <addr@example.com>` would be stored as typed and slip past
        // every limit keyed on the address; a domain literal is no mailbox a partner or staff uses.
        let bare = email_address::Options::default()
            .without_display_text()
            .without_domain_literal();
        if trimmed.len() > Self::MAX_LEN
            || email_address::EmailAddress::parse_with_options(trimmed, bare).is_err()
        {
            return Err(EmailError::Invalid);
        }
        Ok(Self {
            as_entered: trimmed.to_owned(),
            normalized: trimmed.to_lowercase(),
        })
    }

    /// The form used for uniqueness and look-up.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    pub fn as_str(&self) -> &str {
        &self.as_entered
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_entered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_differing_only_in_case_are_the_same_account() {
        let a = Email::parse(" Alice@Example.COM ").unwrap();
        let b = Email::parse("alice@example.com").unwrap();
        assert_eq!(a.normalized(), b.normalized());
        assert_eq!(a.as_str(), "Alice@Example.COM");
    }

    #[test]
    fn only_a_bare_address_is_an_address() {
        for written in [
            "Name <addr@example.com>",
            "<addr@example.com>",
            "\"Name\" <addr@example.com>",
            "addr@[127.0.0.1]",
            "a@example.com, b@example.com",
        ] {
            assert_eq!(Email::parse(written), Err(EmailError::Invalid), "{written}");
        }
        assert!(Email::parse("first.last+tag@sub.example.co.uk").is_ok());
    }

    #[test]
    fn malformed_addresses_are_refused() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert_eq!(Email::parse("not-an-email"), Err(EmailError::Invalid));
        assert_eq!(
            Email::parse("a@b'; DROP TABLE users;--"),
            Err(EmailError::Invalid)
        );
    }
}
