//! bmon-web: the built-in web view of a bmon fleet, read-only, over ClickHouse.
//!
//! Server-rendered HTML with pictures drawn in Rust as inline SVG; no framework, and no script
//! but the live log tail's ([`pages::live`], the only page that reads NATS).
//!
//! - [`server`]: the router (GET only), the request middleware (metrics, tracing, security
//!   headers), [`run`] and [`server::serve`] with graceful shutdown.
//! - [`pages`]: one module per page — a pure `render` and a thin handler.
//! - [`sql`]: one module per page with its queries (every user value a `?` bind) and row
//!   types, and [`sql::Db`], which runs them and turns failures into pages that say what to do.
//! - [`forktree`]: the fork tree built from the nodes' reports (pure).
//! - [`svg`]: the fork tree, timelines and bars as SVG.
//! - [`html`], [`time`], [`params`]: escaping and layout, time formats, request checking.
//! - [`config`], [`metrics`], [`error`]: configuration, Prometheus metrics, errors.

pub mod config;
pub mod error;
pub mod forktree;
pub mod html;
pub mod metrics;
pub mod pages;
pub mod params;
pub mod server;
pub mod sql;
pub mod svg;
pub mod time;

pub use config::Config;
pub use error::{Error, PageError};
pub use server::{router, run, serve, App};
