//! One module per page: a pure `render` from the page's rows to HTML (unit-tested without
//! services) and a thin `handler` that checks the request's parameters, runs the page's
//! queries (`crate::sql`) and wraps the result in the layout.

pub mod alerts;
pub mod block;
pub mod events;
pub mod fleet;
pub mod logs;
pub mod mempools;
pub mod peers;
pub mod search;
pub mod tips;
pub mod tx;
pub mod validation;
