//! Templates and the headers of every page. The templates (`templates/*.html`) are compiled
//! into the binary and rendered by minijinja with HTML auto-escaping; each page gets the
//! strings of its language as `t`, its language code as `lang`, and its own values.
//!
//! Every page answers with a Content-Security-Policy that lets nothing run: no script from
//! anywhere, styles only from this origin's `/static/`, no frames around it, forms posting only
//! to this origin (plus, on an authorization page, the client's registered redirect URI, where
//! the form's answer redirects), no `<base>`; and with `Referrer-Policy: no-referrer`, so that a
//! page's URL (which may carry a request URI) never leaks to the next site.

use std::sync::LazyLock;

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use minijinja::{Environment, Value};

use super::i18n::Lang;

/// The stylesheet of every page, served at `/static/sigillo.css`.
pub const STYLESHEET: &str = include_str!("../../templates/static/sigillo.css");

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("../../templates/base.html")),
        ("error.html", include_str!("../../templates/error.html")),
        (
            "oauth2_login.html",
            include_str!("../../templates/oauth2_login.html"),
        ),
        (
            "oauth2_consent.html",
            include_str!("../../templates/oauth2_consent.html"),
        ),
        (
            "portal/setup.html",
            include_str!("../../templates/portal/setup.html"),
        ),
    ] {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "a page template does not compile");
        }
    }
    env
});

/// A page to render.
pub struct Page {
    pub template: &'static str,
    pub lang: Lang,
    pub status: StatusCode,
    /// The page's own values (a JSON object).
    pub values: serde_json::Value,
    /// Origins, besides this one, that the page's forms may end up at (CSP `form-action`).
    pub form_targets: Vec<String>,
    /// The page loads a script of its own from `/static/` (progressive enhancement only): the
    /// CSP then allows scripts, and their requests, from this origin — never inline.
    pub scripts: bool,
}

impl Page {
    pub fn new(template: &'static str, lang: Lang, values: serde_json::Value) -> Page {
        Page {
            template,
            lang,
            status: StatusCode::OK,
            values,
            form_targets: Vec::new(),
            scripts: false,
        }
    }
}

/// The Content-Security-Policy of a page whose forms may also lead to `form_targets`.
pub fn content_security_policy(form_targets: &[String]) -> String {
    let mut form_action = String::from("'self'");
    for target in form_targets {
        // Only what `url::Url::origin` produced: scheme, host, port; nothing that could close
        // the directive.
        if target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":/.-[]".contains(c))
        {
            form_action.push(' ');
            form_action.push_str(target);
        }
    }
    format!(
        "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// Renders `page` with its headers; a template that fails renders as a bare 500.
pub fn page(page: Page) -> HttpResponse {
    let context = minijinja::context! {
        t => Value::from_serialize(page.lang.strings()),
        lang => page.lang.code(),
        other_lang => match page.lang { Lang::It => "en", Lang::En => "it" },
        ..Value::from_serialize(&page.values)
    };
    let rendered = TEMPLATES
        .get_template(page.template)
        .and_then(|t| t.render(context));
    let mut csp = content_security_policy(&page.form_targets);
    if page.scripts {
        csp = csp.replace(
            "script-src 'none';",
            "script-src 'self'; connect-src 'self';",
        );
    }
    let (status, body) = match rendered {
        Ok(body) => (page.status, body),
        Err(e) => {
            tracing::error!(template = page.template, error = %e, "a page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                page.lang.text("error_server").to_owned(),
            )
        }
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body)
}

/// `GET /static/sigillo.css`.
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(STYLESHEET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_escapes() {
        for name in [
            "base.html",
            "error.html",
            "oauth2_login.html",
            "oauth2_consent.html",
            "portal/setup.html",
        ] {
            assert!(TEMPLATES.get_template(name).is_ok(), "{name}");
        }
        let response = page(Page::new(
            "error.html",
            Lang::En,
            serde_json::json!({ "message": "<script>x</script>" }),
        ));
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response.headers().get(header::CONTENT_SECURITY_POLICY);
        assert!(csp.is_some_and(|v| v.to_str().unwrap().contains("script-src 'none'")));
    }

    #[test]
    fn only_origins_enter_form_action() {
        let csp = content_security_policy(&[
            "https://client.example:8443".into(),
            "https://evil; script-src *".into(),
        ]);
        assert!(csp.contains("form-action 'self' https://client.example:8443;"));
        assert!(!csp.contains("evil"));
    }
}
