//! `aws.s3.iam_role_arn`: STS AssumeRole on top of the instance profile or a key pair.
//!
//! object_store 0.13 assumes roles only from a web-identity token; StarRocks' repositories
//! assume a role from the instance profile (or from keys). This provider calls STS itself,
//! signing with object_store's own SigV4 signer, and caches the temporary credentials until
//! five minutes before they expire.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use object_store::CredentialProvider;
use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::HttpRequest;
use tokio::sync::Mutex;

use super::RepoError;
use super::config::{RepositoryConfig, S3Credentials};
use super::store::{instance_profile_provider, static_credential};

type Provider = Arc<dyn CredentialProvider<Credential = AwsCredential>>;

pub struct AssumeRole {
    role_arn: String,
    external_id: Option<String>,
    region: String,
    /// The STS endpoint: `AWS_ENDPOINT_URL_STS` (the AWS SDKs' variable) or the region's.
    endpoint: String,
    base: Base,
    http: reqwest::Client,
    cached: Mutex<Option<(Arc<AwsCredential>, DateTime<Utc>)>>,
}

enum Base {
    Static(Arc<AwsCredential>),
    Provider(Provider),
}

impl std::fmt::Debug for AssumeRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        f.debug_struct("AssumeRole")
            .field("role_arn", &self.role_arn)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl AssumeRole {
    pub fn new(
        config: &RepositoryConfig,
        role_arn: String,
        external_id: Option<String>,
        base: &S3Credentials,
        region: String,
    ) -> Result<AssumeRole, RepoError> {
        let base = match static_credential(base) {
            Some(c) => Base::Static(Arc::new(c)),
            None => Base::Provider(
                instance_profile_provider(&region).map_err(|e| RepoError::from_store(config, e))?,
            ),
        };
        let endpoint = std::env::var("AWS_ENDPOINT_URL_STS")
            .unwrap_or_else(|_| format!("https://sts.{region}.amazonaws.com"));
        Ok(AssumeRole {
            role_arn,
            external_id,
            region,
            endpoint,
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| RepoError::Unavailable {
                    repository: config.name.clone(),
                    reason: format!("cannot start an HTTP client: {e}"),
                })?,
            cached: Mutex::new(None),
        })
    }

    async fn assume(&self) -> object_store::Result<(AwsCredential, DateTime<Utc>)> {
        let base = match &self.base {
            Base::Static(c) => Arc::clone(c),
            Base::Provider(p) => p.get_credential().await?,
        };
        let mut form = vec![
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", self.role_arn.as_str()),
            ("RoleSessionName", "srbackup"),
            ("DurationSeconds", "3600"),
        ];
        if let Some(id) = &self.external_id {
            form.push(("ExternalId", id.as_str()));
        }
        let body = form_encode(&form);
        let url = format!("{}/", self.endpoint.trim_end_matches('/'));
        let mut request: HttpRequest = http::Request::builder()
            .method("POST")
            .uri(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone().into())
            .map_err(|e| sts_error(format!("cannot build the request: {e}")))?;
        AwsAuthorizer::new(&base, "sts", &self.region).authorize(&mut request, None);
        let mut send = self.http.post(&url).body(body);
        for (name, value) in request.headers() {
            send = send.header(name.as_str(), value.as_bytes());
        }
        let response = send
            .send()
            .await
            .map_err(|e| sts_error(format!("STS at {} is unreachable: {e}", self.endpoint)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| sts_error(format!("reading the STS response: {e}")))?;
        if !status.is_success() {
            let code = xml_value(&text, "Code").unwrap_or_default();
            let message = xml_value(&text, "Message").unwrap_or_default();
            return Err(sts_error(format!(
                "STS refused to assume {}: {status} {code} {message}",
                self.role_arn
            )));
        }
        parse_credentials(&text).ok_or_else(|| sts_error("STS returned no credentials".into()))
    }
}

#[async_trait]
impl CredentialProvider for AssumeRole {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((c, expires)) = cached.as_ref()
            && *expires - chrono::Duration::minutes(5) > Utc::now()
        {
            return Ok(Arc::clone(c));
        }
        let (c, expires) = self.assume().await?;
        let c = Arc::new(c);
        *cached = Some((Arc::clone(&c), expires));
        Ok(c)
    }
}

fn sts_error(message: String) -> object_store::Error {
    object_store::Error::Unauthenticated {
        path: String::new(),
        source: message.into(),
    }
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The text of the first `<tag>…</tag>`, XML entities decoded. STS responses are flat enough
/// that this is exact for the fields read here.
fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(
        xml[start..end]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

fn parse_credentials(xml: &str) -> Option<(AwsCredential, DateTime<Utc>)> {
    let credential = AwsCredential {
        key_id: xml_value(xml, "AccessKeyId")?,
        secret_key: xml_value(xml, "SecretAccessKey")?,
        token: xml_value(xml, "SessionToken"),
    };
    let expires = DateTime::parse_from_rfc3339(&xml_value(xml, "Expiration")?)
        .ok()?
        .with_timezone(&Utc);
    Some((credential, expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_assume_role_response() {
        let xml = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult><Credentials>
    <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
    <SecretAccessKey>abc/def+ghi</SecretAccessKey>
    <SessionToken>tok&amp;en</SessionToken>
    <Expiration>2026-11-24T12:00:00Z</Expiration>
  </Credentials></AssumeRoleResult></AssumeRoleResponse>"#;
        let (c, exp) = parse_credentials(xml).unwrap();
        assert_eq!(c.key_id, "ASIAEXAMPLE");
        assert_eq!(c.secret_key, "abc/def+ghi");
        assert_eq!(c.token.as_deref(), Some("tok&en"));
        assert_eq!(exp.to_rfc3339(), "2026-11-24T12:00:00+00:00");
        assert!(parse_credentials("<Error><Code>AccessDenied</Code></Error>").is_none());
    }

    #[test]
    fn form_encoding_escapes_arns() {
        assert_eq!(
            form_encode(&[("RoleArn", "arn:aws:iam::1:role/r")]),
            "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr"
        );
    }
}
