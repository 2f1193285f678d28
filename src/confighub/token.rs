//! The bearer token, wrapped so it cannot leak through `Debug`, logs or error messages.

use std::fmt;

/// A ConfigHub bearer token. `Debug` and `Display` print `***`; only [`Token::expose`] reveals it,
/// and the client calls that in exactly one place: building the `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Lets clap parse `--token` straight into a redacting type, so `Debug` of the CLI args is safe.
impl std::str::FromStr for Token {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_hides_the_secret() {
        let t = Token::new("s3cr3t-value");
        assert!(!format!("{t:?} {t}").contains("s3cr3t"));
        assert_eq!(t.expose(), "s3cr3t-value");
    }
}
