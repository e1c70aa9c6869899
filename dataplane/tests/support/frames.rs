//! Test frames shared by the dataplane's benches, examples and integration tests (included
//! with `#[path]`): Ethernet + IPv4 + UDP, one flow per source address and port.

/// A 60-byte IPv4/UDP frame of flow `flow`.
pub(crate) fn udp4(flow: u16) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 78, (flow >> 8) as u8, flow as u8]);
    f[30..34].copy_from_slice(&[10, 79, 0, 1]);
    f[34..36].copy_from_slice(&(10000u16.wrapping_add(flow)).to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f
}
