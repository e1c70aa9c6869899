//! Kernel network devices through rtnetlink: look-ups, the veth pair behind `laggN`, link
//! flags, MTU, MAC and addresses.
//!
//! rtnetlink is asynchronous; the control thread is not, so [`Netlink`] owns a small
//! current-thread runtime and blocks on each request. Requests are rare (start, stop,
//! membership changes), never on a worker's path.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, LinkXdp,
};
use rtnetlink::{Handle, LinkUnspec, LinkVeth};

/// Errors talking to the kernel about devices.
#[derive(Debug, thiserror::Error)]
pub enum NetdevError {
    /// The netlink socket could not be opened.
    #[error("opening a netlink socket: {0}")]
    Open(#[source] std::io::Error),
    /// A request failed.
    #[error("{what}: {source}")]
    Request {
        /// What was asked, with the device name.
        what: String,
        /// The kernel's answer (boxed: rtnetlink's error is large).
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// No such device.
    #[error("no network interface named '{0}' on this machine")]
    NoSuchDevice(String),
}

/// What the control thread needs to know about one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkState {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// MAC address (zero if the device has none).
    pub mac: [u8; 6],
    /// MTU.
    pub mtu: u32,
    /// Administratively up (IFF_UP).
    pub admin_up: bool,
    /// Carrier present (IFF_LOWER_UP).
    pub carrier: bool,
    /// Device kind, e.g. `veth`; `None` for physical NICs.
    pub kind: Option<String>,
    /// Number of receive queues.
    pub rx_queues: u32,
    /// The id of the XDP program attached to the device, if any.
    pub xdp_prog: Option<u32>,
}

impl LinkState {
    fn from_message(msg: &LinkMessage) -> Self {
        let mut state = LinkState {
            index: msg.header.index,
            name: String::new(),
            mac: [0; 6],
            mtu: 0,
            admin_up: msg.header.flags.contains(LinkFlags::Up),
            carrier: msg.header.flags.contains(LinkFlags::LowerUp),
            kind: None,
            rx_queues: 1,
            xdp_prog: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(name) => state.name = name.clone(),
                LinkAttribute::Address(mac) if mac.len() == 6 => state.mac.copy_from_slice(mac),
                LinkAttribute::Mtu(mtu) => state.mtu = *mtu,
                LinkAttribute::NumRxQueues(n) => state.rx_queues = *n,
                LinkAttribute::Xdp(xdp) => {
                    state.xdp_prog = xdp.iter().find_map(|x| match x {
                        LinkXdp::ProgId(id) if *id != 0 => Some(*id),
                        _ => None,
                    });
                }
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(kind) = info {
                            state.kind = Some(kind_name(kind));
                        }
                    }
                }
                _ => {}
            }
        }
        state
    }
}

fn kind_name(kind: &InfoKind) -> String {
    match kind {
        InfoKind::Veth => "veth".into(),
        InfoKind::Bridge => "bridge".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A blocking rtnetlink client.
#[derive(Debug)]
pub struct Netlink {
    runtime: tokio::runtime::Runtime,
    handle: Handle,
}

impl Netlink {
    /// Opens a netlink socket in the current network namespace.
    ///
    /// # Errors
    /// When the socket or runtime cannot be created.
    pub fn new() -> Result<Self, NetdevError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(NetdevError::Open)?;
        let (connection, handle, _) = {
            let _guard = runtime.enter();
            rtnetlink::new_connection().map_err(NetdevError::Open)?
        };
        runtime.spawn(connection);
        Ok(Self { runtime, handle })
    }

    fn request<T>(
        &self,
        what: impl FnOnce() -> String,
        fut: impl std::future::Future<Output = Result<T, rtnetlink::Error>>,
    ) -> Result<T, NetdevError> {
        self.runtime
            .block_on(fut)
            .map_err(|source| NetdevError::Request {
                what: what(),
                source: Box::new(source),
            })
    }

    /// The device named `name`, or `None` if there is none.
    ///
    /// # Errors
    /// When the request fails for another reason than the device not existing.
    pub fn link(&self, name: &str) -> Result<Option<LinkState>, NetdevError> {
        let handle = self.handle.clone();
        let owned = name.to_string();
        let result = self.runtime.block_on(async move {
            let mut links = handle.link().get().match_name(owned).execute();
            links.try_next().await
        });
        match result {
            Ok(Some(msg)) => Ok(Some(LinkState::from_message(&msg))),
            Ok(None) => Ok(None),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
            Err(source) => Err(NetdevError::Request {
                what: format!("looking up {name}"),
                source: Box::new(source),
            }),
        }
    }

    /// The device named `name`.
    ///
    /// # Errors
    /// [`NetdevError::NoSuchDevice`] when it does not exist.
    pub fn require(&self, name: &str) -> Result<LinkState, NetdevError> {
        self.link(name)?
            .ok_or_else(|| NetdevError::NoSuchDevice(name.to_string()))
    }

    /// Every device of this namespace.
    ///
    /// # Errors
    /// When the dump fails.
    pub fn links(&self) -> Result<Vec<LinkState>, NetdevError> {
        let handle = self.handle.clone();
        self.request(|| "listing interfaces".into(), async move {
            let msgs: Vec<LinkMessage> = handle.link().get().execute().try_collect().await?;
            Ok(msgs.iter().map(LinkState::from_message).collect())
        })
    }

    /// Creates a veth pair `name` <-> `peer`, each end with `queues` transmit and receive
    /// queues.
    ///
    /// # Errors
    /// When the kernel refuses (name taken, too long).
    pub fn create_veth(&self, name: &str, peer: &str, queues: u32) -> Result<(), NetdevError> {
        use netlink_packet_route::link::{InfoData, InfoVeth, LinkAttribute};
        let queues = queues.max(1);
        let peer_msg = rtnetlink::LinkMessageBuilder::<rtnetlink::LinkUnspec>::new()
            .name(peer.to_string())
            .append_extra_attribute(LinkAttribute::NumTxQueues(queues))
            .append_extra_attribute(LinkAttribute::NumRxQueues(queues))
            .build();
        let msg = LinkVeth::new(name, peer)
            .append_extra_attribute(LinkAttribute::NumTxQueues(queues))
            .append_extra_attribute(LinkAttribute::NumRxQueues(queues))
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
            .build();
        let req = self.handle.link().add(msg).execute();
        self.request(|| format!("creating veth pair {name} <-> {peer}"), req)
    }

    /// Deletes a device (for a veth, both ends).
    ///
    /// # Errors
    /// When the kernel refuses.
    pub fn delete(&self, index: u32, name: &str) -> Result<(), NetdevError> {
        let req = self.handle.link().del(index).execute();
        self.request(|| format!("deleting {name}"), req)
    }

    fn set(&self, what: impl FnOnce() -> String, msg: LinkMessage) -> Result<(), NetdevError> {
        let req = self.handle.link().set(msg).execute();
        self.request(what, req)
    }

    /// Sets a device administratively up or down.
    ///
    /// # Errors
    /// When the kernel refuses.
    pub fn set_up(&self, index: u32, up: bool) -> Result<(), NetdevError> {
        let b = LinkUnspec::new_with_index(index);
        let msg = if up { b.up() } else { b.down() }.build();
        self.set(
            || {
                format!(
                    "setting interface {index} {}",
                    if up { "up" } else { "down" }
                )
            },
            msg,
        )
    }

    /// Sets the MTU.
    ///
    /// # Errors
    /// When the kernel refuses (e.g. above what the device or its XDP program allows).
    pub fn set_mtu(&self, index: u32, mtu: u32) -> Result<(), NetdevError> {
        let msg = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.set(|| format!("setting MTU {mtu} on interface {index}"), msg)
    }

    /// Sets the MAC address.
    ///
    /// # Errors
    /// When the kernel refuses.
    pub fn set_mac(&self, index: u32, mac: [u8; 6]) -> Result<(), NetdevError> {
        let msg = LinkUnspec::new_with_index(index)
            .address(mac.to_vec())
            .build();
        self.set(|| format!("setting MAC on interface {index}"), msg)
    }

    /// Adds an address with its prefix length.
    ///
    /// # Errors
    /// When the kernel refuses (e.g. the address exists).
    pub fn add_address(&self, index: u32, addr: IpAddr, prefix: u8) -> Result<(), NetdevError> {
        let req = self.handle.address().add(index, addr, prefix).execute();
        self.request(
            || format!("adding address {addr}/{prefix} to interface {index}"),
            req,
        )
    }
}

/// The address messages of interface `index`.
async fn address_messages(
    handle: &Handle,
    index: u32,
) -> Result<Vec<rtnetlink::packet_route::address::AddressMessage>, rtnetlink::Error> {
    handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
}

/// The address a message carries (IPv4 has both Local and Address; IPv6 only Address).
fn message_address(m: &rtnetlink::packet_route::address::AddressMessage) -> Option<IpAddr> {
    use rtnetlink::packet_route::address::AddressAttribute;
    let local = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let addr = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    });
    local.or(addr)
}

impl Netlink {
    /// Every address of interface `index` (IPv4 and IPv6).
    ///
    /// # Errors
    /// When the dump fails.
    pub fn addresses(&self, index: u32) -> Result<Vec<IpAddr>, NetdevError> {
        let mut out: Vec<IpAddr> = Vec::new();
        for (ip, _) in self.prefixed_addresses(index)? {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
        Ok(out)
    }

    /// Every address of interface `index` with its prefix length.
    ///
    /// # Errors
    /// When the dump fails.
    pub fn prefixed_addresses(&self, index: u32) -> Result<Vec<(IpAddr, u8)>, NetdevError> {
        self.address_list(index, false)
    }

    /// The addresses of interface `index` the kernel does not hold as permanent (a DHCP lease
    /// added with its lifetime, SLAAC's), with prefix length; addresses added without a
    /// lifetime (static, by hand) are left out.
    ///
    /// # Errors
    /// When the dump fails.
    pub fn dynamic_addresses(&self, index: u32) -> Result<Vec<(IpAddr, u8)>, NetdevError> {
        self.address_list(index, true)
    }

    fn address_list(
        &self,
        index: u32,
        only_dynamic: bool,
    ) -> Result<Vec<(IpAddr, u8)>, NetdevError> {
        use rtnetlink::packet_route::address::AddressHeaderFlags;
        let handle = self.handle.clone();
        self.request(
            || format!("listing addresses of interface {index}"),
            async move {
                let mut out = Vec::new();
                for m in address_messages(&handle, index).await? {
                    if only_dynamic && m.header.flags.contains(AddressHeaderFlags::Permanent) {
                        continue;
                    }
                    if let Some(ip) = message_address(&m) {
                        let entry = (ip, m.header.prefix_len);
                        if !out.contains(&entry) {
                            out.push(entry);
                        }
                    }
                }
                Ok(out)
            },
        )
    }

    /// Removes address `addr` (any prefix) from interface `index`; absent is not an error.
    ///
    /// # Errors
    /// When the kernel refuses.
    pub fn delete_address(&self, index: u32, addr: IpAddr) -> Result<(), NetdevError> {
        let handle = self.handle.clone();
        self.request(
            || format!("removing address {addr} from interface {index}"),
            async move {
                for m in address_messages(&handle, index).await? {
                    if message_address(&m) == Some(addr) {
                        handle.address().del(m).execute().await?;
                        break;
                    }
                }
                Ok(())
            },
        )
    }
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
