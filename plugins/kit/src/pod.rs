//! Plain old data: reading BPF records and map values as the generated structs
//! (see `btf_types`), and writing filters from them, without offsets by hand.
//! The same idea as the `plain` crate, kept here because the generated structs
//! are the only implementors and this is all of it.

use tracer_plugin_api::MapSnapshot;

/// A type that any bytes of its size are a valid value of, with no implicit
/// padding.
///
/// # Safety
/// Implement only for `#[repr(C)]` structs of integers and arrays of them whose
/// every gap is an explicit field: the generated shared structs, which assert
/// their size and offsets at compile time.
pub unsafe trait Pod: Copy + 'static {}

unsafe impl Pod for u8 {}
unsafe impl Pod for u16 {}
unsafe impl Pod for u32 {}
unsafe impl Pod for u64 {}
unsafe impl Pod for i32 {}
unsafe impl Pod for i64 {}
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

/// All-zero `T`: every field 0, every array empty.
pub fn zeroed<T: Pod>() -> T {
    // SAFETY: T: Pod, so the all-zero bytes are a valid T.
    unsafe { std::mem::zeroed() }
}

/// A `T` from the first `size_of::<T>()` bytes of `b`, or None if `b` is shorter
/// (records and map values are only as trustworthy as their source).
pub fn read<T: Pod>(b: &[u8]) -> Option<T> {
    if b.len() < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: enough bytes, any bytes are a valid T, and the read is unaligned.
    Some(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<T>()) })
}

/// A `T` from a record that may end early (a variable-length tail, such as a
/// path sent only up to its NUL): at least `min` bytes are needed; the bytes
/// past the record's end read as zero.
pub fn read_prefix<T: Pod>(b: &[u8], min: usize) -> Option<T> {
    if b.len() < min {
        return None;
    }
    let mut v = zeroed::<T>();
    let n = b.len().min(std::mem::size_of::<T>());
    // SAFETY: T: Pod, so writing any bytes over its first n bytes leaves a valid T.
    unsafe { std::slice::from_raw_parts_mut((&mut v as *mut T).cast::<u8>(), n) }.copy_from_slice(&b[..n]);
    Some(v)
}

/// The first `head` bytes of `b` written over `dst`: a record's fixed part,
/// into a value kept for the next record, when a large array follows it
/// that the caller reads from `b` itself (read_prefix would zero and copy
/// that array for every record). False if `b` is shorter than `head`.
pub fn read_head_into<T: Pod>(dst: &mut T, b: &[u8], head: usize) -> bool {
    let head = head.min(std::mem::size_of::<T>());
    if b.len() < head {
        return false;
    }
    // SAFETY: T: Pod, so writing any bytes over its first `head` bytes leaves a valid T.
    unsafe { std::slice::from_raw_parts_mut((dst as *mut T).cast::<u8>(), head) }.copy_from_slice(&b[..head]);
    true
}

/// The bytes of `v`, as the BPF program reads them.
pub fn bytes_of<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: T: Pod has no padding, so every byte is initialised.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// An entry's value of a per-CPU map as one `T` per CPU (a short or odd-sized
/// value yields fewer).
pub fn per_cpu_values<'a, T: Pod>(snap: &MapSnapshot, value: &'a [u8]) -> impl Iterator<Item = T> + 'a {
    crate::per_cpu(snap, value).filter_map(read::<T>)
}

/// Slot by slot, the sum over CPUs of per-CPU arrays (histogram buckets),
/// saturating: the values come from a map.
pub fn sum_slots<'a, const N: usize>(cpus: impl IntoIterator<Item = &'a [u64; N]>) -> Vec<u64> {
    let mut out = vec![0u64; N];
    for h in cpus {
        for (o, v) in out.iter_mut().zip(h) {
            *o = o.saturating_add(*v);
        }
    }
    out
}

/// A generated struct's layout as the Rust compiler made it: what the kit's
/// test support compares with the BTF of the plugin's object.
#[derive(Debug, Clone)]
pub struct Layout {
    pub name: &'static str,
    pub size: usize,
    pub fields: Vec<(&'static str, usize)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::proc_filter;

    #[test]
    fn short_bytes_are_no_value_and_bytes_round_trip() {
        let f = crate::proc_filter(Some(9), Some("pp"), false, 5, 3);
        let b = bytes_of(&f);
        assert_eq!(b.len(), 32);
        let back: proc_filter = read(b).unwrap();
        assert_eq!((back.pid, back.exclude_pid, back.has_comm, back.gen), (9, 5, 1, 3));
        assert_eq!(&back.comm[..3], b"pp\0");
        assert!(read::<proc_filter>(&b[..31]).is_none());
        assert_eq!(sum_slots(&[[1, u64::MAX], [2, 5]]), vec![3, u64::MAX]);
    }

    #[test]
    fn a_head_read_into_a_kept_value_writes_only_the_head() {
        let f = crate::proc_filter(Some(9), Some("pp"), false, 5, 3);
        let b = bytes_of(&f);
        let mut kept = crate::proc_filter(Some(1), Some("zzzzzzzz"), true, 2, 4);
        // pid and exclude_pid (the first 8 bytes) from the record; the rest kept.
        assert!(read_head_into(&mut kept, b, 8));
        assert_eq!((kept.pid, kept.exclude_pid, kept.has_comm, kept.gen), (9, 5, 1, 4));
        assert_eq!(&kept.comm[..3], b"zzz");
        assert!(!read_head_into(&mut kept, &b[..7], 8), "a record shorter than the head");
        assert!(read_head_into(&mut kept, b, 1000), "a head past the type is the whole type");
        assert_eq!(kept.gen, 3);
    }
}
