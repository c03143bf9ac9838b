import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The address `--http` names, resolved once: the server binds to the numeric address checked,
/// never to a name whose answer could change between the check and the bind.
package struct ListenAddress: Sendable, Equatable {
    /// The numeric address to bind (`127.0.0.1`, `::1`).
    package var address: String
    /// Whether every address the name resolved to is loopback.
    package var isLoopback: Bool

    package init(address: String, isLoopback: Bool) {
        self.address = address
        self.isLoopback = isLoopback
    }

    /// Resolves `host`: a numeric IPv4 or IPv6 address, or a name every one of whose addresses is
    /// checked (`127.evil.example` resolving to `0.0.0.0` is not loopback).
    ///
    /// - Throws: ``ListenAddressError`` when `host` resolves to nothing, or looks numeric but is not
    ///   a plain address (`0177.0.0.1`, which C's resolver would read as octal).
    package static func resolve(_ host: String) throws(ListenAddressError) -> ListenAddress {
        if let numeric = numeric(host) { return numeric }
        guard host.contains(where: \.isLetter) else {
            throw ListenAddressError("\(host) is not an address: write IPv4 as four decimal numbers, such as 127.0.0.1")
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let first = list else {
            throw ListenAddressError("\(host) does not resolve: \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var addresses: [ListenAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            if let text = Self.text(current.pointee.ai_addr), let numeric = numeric(text) { addresses.append(numeric) }
            entry = current.pointee.ai_next
        }
        guard let chosen = addresses.first else { throw ListenAddressError("\(host) resolves to no IP address") }
        return ListenAddress(address: chosen.address, isLoopback: addresses.allSatisfy(\.isLoopback))
    }

    private static func numeric(_ host: String) -> ListenAddress? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return ListenAddress(address: host, isLoopback: UInt32(bigEndian: v4.s_addr) >> 24 == 127)
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            let bytes = withUnsafeBytes(of: v6) { Array($0) }
            let isLoopback =
                bytes == [UInt8](repeating: 0, count: 15) + [1]
                || (bytes.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] && bytes[12] == 127)
            return ListenAddress(address: host, isLoopback: isLoopback)
        }
        return nil
    }

    private static func text(_ address: UnsafeMutablePointer<sockaddr>?) -> String? {
        guard let address else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = Int32(address.pointee.sa_family)
        let written: UnsafePointer<CChar>? =
            switch family {
            case AF_INET:
                address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { inet in
                    inet_ntop(AF_INET, &inet.pointee.sin_addr, &buffer, socklen_t(buffer.count))
                }
            case AF_INET6:
                address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { inet in
                    inet_ntop(AF_INET6, &inet.pointee.sin6_addr, &buffer, socklen_t(buffer.count))
                }
            default: nil
            }
        return written.map { _ in
            String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// How people write it in a URL: IPv6 in brackets.
    package func url(port: Int, scheme: String = "http") -> String {
        address.contains(":") ? "\(scheme)://[\(address)]:\(port)/" : "\(scheme)://\(address):\(port)/"
    }
}

package struct ListenAddressError: Error, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}
