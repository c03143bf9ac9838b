#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes all of `count` bytes at `bytes` to `descriptor`, retrying short and interrupted writes.
///
/// - Returns: `nil` once everything is written, else the `strerror` text of why not.
package func writeAll(_ bytes: UnsafeRawPointer, count: Int, to descriptor: Int32) -> String? {
    var offset = 0
    while offset < count {
        let written = write(descriptor, bytes + offset, count - offset)
        if written < 0 {
            if errno == EINTR { continue }
            return String(cString: strerror(errno))
        }
        offset += written
    }
    return nil
}
