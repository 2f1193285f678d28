//! The ConfigHub client against an in-process local hub, end to end: every client operation, the
//! hub's exact JSON shapes and headers, hostile input, retry behaviour against scripted servers,
//! persistence across restarts, and `hub import` (library and CLI).

#[path = "confighub/support.rs"]
mod support;

#[path = "confighub/auth.rs"]
mod auth;
#[path = "confighub/bulk.rs"]
mod bulk;
#[path = "confighub/cli.rs"]
mod cli;
#[path = "confighub/client_ops.rs"]
mod client_ops;
#[path = "confighub/faults.rs"]
mod faults;
#[path = "confighub/hidden.rs"]
mod hidden;
#[path = "confighub/hostile.rs"]
mod hostile;
#[path = "confighub/import.rs"]
mod import;
#[path = "confighub/lists.rs"]
mod lists;
#[path = "confighub/paging.rs"]
mod paging;
#[path = "confighub/retry.rs"]
mod retry;
#[path = "confighub/schema.rs"]
mod schema;
#[path = "confighub/shapes.rs"]
mod shapes;
#[path = "confighub/tls.rs"]
mod tls;
#[path = "e2e/support/tls.rs"]
mod tls_support;
