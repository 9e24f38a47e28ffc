//! The one parser of web origins ([`parse_origin`]) and the one of relying
//! party ids ([`parse_rp_id`]), for every configuration that takes them
//! (the [`Passlock`](crate::Passlock) builder, the embedded provider, the
//! hosted provider).

use crate::error::ConfigError;

/// Parses an allowed origin: `https://host[:port]`, or `http://localhost[:port]`
/// (plain http on no other host), with no path (a lone `/` is allowed),
/// query, fragment or credentials. Returns the parsed URL; its
/// [`ascii_serialization`](url::Origin::ascii_serialization) is the
/// normalised form (`https://Example.com/` is `https://example.com`).
/// Errors name the field `origins`.
pub fn parse_origin(origin: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(origin)
        .map_err(|_| ConfigError::new("origins", format!("{origin:?} is not a URL")))?;
    match url.scheme() {
        "https" => {}
        "http" if url.host_str() == Some("localhost") => {}
        _ => {
            return Err(ConfigError::new(
                "origins",
                format!("{origin:?} must be https (plain http only for localhost)"),
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(
            "origins",
            format!("{origin:?} has no host"),
        ));
    }
    if !(url.path().is_empty() || url.path() == "/")
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(ConfigError::new(
            "origins",
            format!("{origin:?} must be an origin (scheme, host and port only)"),
        ));
    }
    Ok(url)
}

/// The normalised form of an allowed origin (see [`parse_origin`]).
pub fn normalize_origin(origin: &str) -> Result<String, ConfigError> {
    parse_origin(origin).map(|url| url.origin().ascii_serialization())
}

/// Checks a relying party id: a bare domain name (`example.com`,
/// `localhost`): ASCII letters, digits, `-` and `.`, not starting or ending
/// with a dot; no scheme, port or path. Errors name the field `rp_id`.
pub fn parse_rp_id(rp_id: &str) -> Result<&str, ConfigError> {
    if rp_id.is_empty() {
        return Err(ConfigError::new("rp_id", "must not be empty"));
    }
    if rp_id.starts_with('.')
        || rp_id.ends_with('.')
        || !rp_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(ConfigError::new(
            "rp_id",
            "must be a domain name (no scheme, port or path)",
        ));
    }
    Ok(rp_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_have_one_rule() {
        assert_eq!(
            normalize_origin("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        assert_eq!(
            normalize_origin("https://Example.com/").unwrap(),
            "https://example.com"
        );
        for bad in [
            "http://example.com",
            "http://app.localhost",
            "https://example.com/path",
            "https://example.com/?q=1",
            "https://example.com/#f",
            "https://user:pw@example.com",
            "ftp://example.com",
            "example.com",
            "",
        ] {
            assert_eq!(parse_origin(bad).unwrap_err().field, "origins", "{bad}");
        }
    }

    #[test]
    fn rp_ids_have_one_rule() {
        assert_eq!(parse_rp_id("example.com").unwrap(), "example.com");
        assert_eq!(parse_rp_id("localhost").unwrap(), "localhost");
        for bad in [
            "",
            ".example.com",
            "example.com.",
            "https://example.com",
            "example.com:443",
            "example.com/x",
            "exa mple.com",
        ] {
            assert_eq!(parse_rp_id(bad).unwrap_err().field, "rp_id", "{bad}");
        }
    }
}
