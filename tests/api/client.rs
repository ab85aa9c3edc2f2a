//! A browser for tests: a cookie-keeping HTTP client pointed at one server, the steps a person
//! takes, a software passkey authenticator as its "device", and helpers to read pages.

use std::sync::{Arc, Mutex};

use reqwest::cookie::{CookieStore, Jar};
use reqwest::redirect::Policy;
use reqwest::{Response, StatusCode};
use scraper::{Html, Selector};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

/// A browser: a cookie-keeping client pointed at one server, with the steps a person takes, and a
/// software passkey authenticator as its "device".
pub struct Browser {
    pub address: String,
    /// The console's public origin, which passkey ceremonies are bound to.
    pub origin: Url,
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
    pub authenticator: Mutex<SoftPasskey>,
}

impl Browser {
    pub fn new(address: &str, origin: &Url) -> Self {
        Self::configured(address, origin, |builder| builder)
    }

    /// A browser whose connections come from `local` (any 127.x.y.z address reaches the server:
    /// a second machine, or a load balancer), sending `headers` with every request.
    pub fn connecting_from(
        address: &str,
        origin: &Url,
        local: std::net::IpAddr,
        headers: &[(&'static str, &str)],
    ) -> Self {
        let mut defaults = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            defaults.append(*name, value.parse().expect("header value"));
        }
        Self::configured(address, origin, |builder| {
            builder.local_address(local).default_headers(defaults)
        })
    }

    fn configured(
        address: &str,
        origin: &Url,
        configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Self {
        let jar = Arc::new(Jar::default());
        let client = configure(
            reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(Policy::none())
                .user_agent("tokenbroker-tests/1.0"),
        )
        .build()
        .expect("http client");
        Self {
            address: address.to_owned(),
            origin: origin.clone(),
            client,
            jar,
            authenticator: Mutex::new(SoftPasskey::new(true)),
        }
    }

    /// A browser that carries someone else's session cookie (`name=value`).
    pub fn with_cookie(address: &str, origin: &Url, cookie: &str) -> Self {
        let browser = Self::new(address, origin);
        browser
            .jar
            .add_cookie_str(cookie, &address.parse().expect("url"));
        browser
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("POST")
    }

    /// GETs `page`, then POSTs `form` to `action` with that page's CSRF token and the page as the
    /// `Referer`, like a browser.
    pub async fn submit(&self, page: &str, action: &str, form: &[(&str, &str)]) -> Response {
        let html = self.get(page).await.text().await.expect("page body");
        let token = csrf_token(&html);
        let mut fields = vec![("csrf_token", token.as_str())];
        fields.extend_from_slice(form);
        let referer = self.origin.join(page).expect("page url");
        self.client
            .post(self.url(action))
            .header("referer", referer.as_str())
            .form(&fields)
            .send()
            .await
            .expect("POST")
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.submit(
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    pub async fn logout(&self) -> Response {
        let html = self.page_with_form("/").await;
        self.post_form("/logout", &[("csrf_token", &csrf_token(&html))])
            .await
    }

    /// GETs `path`, following redirects (as a browser would) to the page that is finally shown.
    pub async fn page_with_form(&self, path: &str) -> String {
        let mut path = path.to_owned();
        for _ in 0..5 {
            let response = self.get(&path).await;
            if response.status() != StatusCode::SEE_OTHER {
                return response.text().await.expect("page body");
            }
            path = response.headers()["location"]
                .to_str()
                .expect("location")
                .to_owned();
        }
        panic!("too many redirects from {path}");
    }

    /// Signs in completely: password, then this browser's passkey.
    pub async fn sign_in(&self, email: &str, password: &str) {
        assert_redirect_to(&self.login(email, password).await, "/login/passkey");
        assert_redirect_to(
            &self
                .answer_passkey("/login/passkey", "/login/passkey")
                .await,
            "/",
        );
    }

    /// Opens `page`, answers its passkey prompt with this browser's authenticator, posts to `action`.
    pub async fn answer_passkey(&self, page: &str, action: &str) -> Response {
        let (csrf, credential) = self.passkey_answer(page).await;
        self.post_form(
            action,
            &[("csrf_token", &csrf), ("credential", &credential)],
        )
        .await
    }

    /// Opens `page` and answers its passkey prompt without posting (to tamper with or replay):
    /// the page's CSRF token and the credential JSON.
    pub async fn passkey_answer(&self, page: &str) -> (String, String) {
        let html = self.page_with_form(page).await;
        let options: RequestChallengeResponse =
            serde_json::from_str(&passkey_options(&html)).expect("assertion options");
        let credential = self
            .authenticator
            .lock()
            .expect("authenticator")
            .do_authentication(self.origin.clone(), options)
            .expect("the soft passkey answers");
        (
            csrf_token(&html),
            serde_json::to_string(&credential).expect("json"),
        )
    }

    /// Creates a passkey named `name` through the enrolment page.
    pub async fn enrol_passkey(&self, name: &str) -> Response {
        let html = self.page_with_form("/mfa/enrol").await;
        let options: CreationChallengeResponse =
            serde_json::from_str(&passkey_options(&html)).expect("creation options");
        let credential = self
            .authenticator
            .lock()
            .expect("authenticator")
            .do_registration(self.origin.clone(), options)
            .expect("the soft passkey registers");
        let json = serde_json::to_string(&credential).expect("json");
        self.post_form(
            "/mfa/enrol",
            &[
                ("csrf_token", &csrf_token(&html)),
                ("name", name),
                ("credential", &json),
            ],
        )
        .await
    }

    pub async fn dashboard_html(&self) -> String {
        let response = self.get("/").await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "dashboard should be reachable"
        );
        response.text().await.expect("dashboard body")
    }

    pub fn session_cookie(&self) -> Option<String> {
        let url = self.address.parse().expect("url");
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find(|pair| pair.starts_with("tb_session="))
            .map(str::to_owned)
    }
}

pub fn csrf_token(html: &str) -> String {
    let document = Html::parse_document(html);
    let selector = Selector::parse(r#"input[name="csrf_token"]"#).expect("selector");
    document
        .select(&selector)
        .next()
        .and_then(|input| input.value().attr("value"))
        .expect("page carries a CSRF token")
        .to_owned()
}

/// The ceremony options a page hands to its passkey script.
pub fn passkey_options(html: &str) -> String {
    let document = Html::parse_document(html);
    let selector = Selector::parse("form[data-webauthn]").expect("selector");
    document
        .select(&selector)
        .next()
        .and_then(|form| form.value().attr("data-options"))
        .expect("page carries passkey options")
        .to_owned()
}

/// The texts of every element matching `css`.
pub fn all_text_of(html: &str, css: &str) -> Vec<String> {
    let document = Html::parse_document(html);
    let selector = Selector::parse(css).expect("selector");
    document
        .select(&selector)
        .map(|element| element.text().collect::<String>().trim().to_owned())
        .collect()
}

/// The text of the first element matching `css`, whitespace-collapsed.
pub fn text_of(html: &str, css: &str) -> Option<String> {
    let document = Html::parse_document(html);
    let selector = Selector::parse(css).expect("selector");
    document.select(&selector).next().map(|element| {
        element
            .text()
            .collect::<Vec<_>>()
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    })
}

pub fn assert_redirect_to(response: &Response, location: &str) {
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "expected a redirect to {location}"
    );
    assert_eq!(
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some(location)
    );
}
