//! The protocols spoken on the member links, each a sans-IO core or a frame builder: no
//! socket, thread or clock inside; the runtime feeds them frames and time.
//!
//! - [`lacp`]: IEEE 802.1AX LACP, one module per state machine, and the Marker responder;
//! - [`bfd`]: micro-BFD (RFC 7130) sessions per member;
//! - [`probe`]: the ARP/NS probe monitor's frames and the replies it accepts;
//! - [`notify`]: peer notifications (gratuitous ARP, unsolicited NA);
//! - [`time`]: the one time type every core takes `now` in;
//! - [`wire`]: the header views and representations every one of them builds and reads
//!   frames with.

pub mod bfd;
pub mod lacp;
pub mod notify;
pub mod probe;
pub mod time;
pub mod wire;
