//! `xlaggd` put together: the layer above the runtime and the management front ends, the only
//! one that knows both.
//!
//! - [`startup`]: how `xlaggd` starts, runs and stops;
//! - [`control_loop`]: the control thread's loop over every input and deadline: link
//!   notifications, control frames, management requests, the HTTP listener, timers.

pub mod control_loop;
pub mod startup;
