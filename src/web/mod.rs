//! Server-rendered pages: the OAuth2 authorization pages now, the subscriber portal next. The
//! parts every page shares live here: templates compiled into the binary (`render`), the
//! strings of each language (`i18n`), the CSRF token of every form (`csrf`), the browser
//! session (`session`), and the security headers of every page (`render::page`).
//!
//! Invariants: no page needs JavaScript and none may run any inline (the Content-Security-Policy
//! allows scripts from nowhere, styles only from `/static/`; a page that sets `Page::scripts`,
//! such as the setup page's live password check, may load its own from `/static/`); every form that changes state
//! carries a CSRF token checked before anything else; templates escape every value (HTML
//! auto-escaping is on for `.html` templates); pages never say whether a user id exists.

//! A new page (the portal's): add its template to `render::TEMPLATES` (it extends
//! `base.html`), its strings to both tables of `i18n`, and in its handler take `Csrf` as an
//! extractor, pick `Lang::negotiate`, render with `page(Page::new(..))` and `csrf.apply` the
//! response; check `csrf.verify(form.csrf)` first in every POST. A portal session is a
//! `session::SessionCookie` with `SameSite::Strict` and a name of its own.

pub mod csrf;
pub mod i18n;
pub mod portal;
pub mod render;
pub mod session;

pub use csrf::Csrf;
pub use i18n::Lang;
pub use render::{page, stylesheet, Page};
