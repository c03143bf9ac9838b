import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A read-write connection to libvirtd that passes on every domain's QMP events and its starts and stops.
///
/// Notices are delivered to the handler on libvirt's event loop thread, in the order libvirtd sent
/// them (QMP events and lifecycle events share one queue in libvirtd, so a run's last SHUTDOWN comes
/// before its STOPPED). The handler may block to slow libvirt down; it must not call libvirt.
///
/// The calls here block on a round trip to libvirtd: make them from a thread that may block.
///
/// ```swift
/// let connection = try LibvirtConnection(uri: "qemu:///system") { notice in queue.put(notice) }
/// let domains = try connection.activeDomains()
/// ```
public final class LibvirtConnection: @unchecked Sendable {
    public let uri: String
    private let api: LibvirtAPI
    private let connection: OpaquePointer
    private let registrations: (lifecycle: Int32, monitor: Int32)
    private let closed = Mutex(false)

    /// Opens `uri` read-write and registers for every domain's QMP events, lifecycle events and the
    /// connection's close.
    ///
    /// - Throws: ``LibvirtError`` `.libraryMissing` without libvirt, `.connectionFailed` when libvirtd
    ///   cannot be reached or refuses a read-write connection (it then names what access is needed).
    public init(uri: String, handler: @escaping @Sendable (LibvirtNotice) -> Void) throws(LibvirtError) {
        let api = try LibvirtAPI.shared()
        try LibvirtEventLoop.start(api)
        self.uri = uri
        self.api = api
        guard let connection = api.connectOpen(uri) else {
            throw LibvirtError(
                code: .connectionFailed,
                message: "could not open a read-write libvirt connection to \(uri): \(api.lastError()). "
                    + "Passing QMP events through needs read-write access (root, or a user libvirt's polkit "
                    + "rule admits, such as a member of the 'libvirt' group)"
            )
        }
        let box = CallbackBox(api: api, handler: handler)
        func fail(_ what: String) -> LibvirtError {
            let error = LibvirtError(
                code: .connectionFailed,
                message: "libvirt at \(uri) refused \(what): \(api.lastError())"
            )
            _ = api.connectClose(connection)
            return error
        }
        // Each registration holds a reference to the box, released by libvirt through `release`.
        guard api.connectRegisterCloseCallback(connection, Self.onClose, box.retained(), Self.release) == 0 else {
            throw fail("a close callback")
        }
        let lifecycle = api.connectDomainEventRegisterAny(
            connection,
            nil,
            0,  // VIR_DOMAIN_EVENT_ID_LIFECYCLE
            unsafeBitCast(Self.onLifecycle, to: UnsafeRawPointer.self),
            box.retained(),
            Self.release
        )
        guard lifecycle >= 0 else { throw fail("lifecycle events") }
        let monitor = api.qemuMonitorEventRegister(
            connection,
            nil,
            nil,
            Self.onMonitorEvent,
            box.retained(),
            Self.release,
            0
        )
        guard monitor >= 0 else {
            throw fail(
                "QMP event passthrough (virConnectDomainQemuMonitorEventRegister; it needs a read-write connection)"
            )
        }
        // libvirtd that stops answering (a hung or unplugged host) ends the connection within ~20 s.
        _ = api.connectSetKeepAlive(connection, 5, 3)
        self.connection = connection
        self.registrations = (lifecycle, monitor)
    }

    /// The running domains with their states.
    public func activeDomains() throws(LibvirtError) -> [(domain: LibvirtDomain, state: LibvirtDomainState?)] {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = api.connectListAllDomains(connection, &list, 1)  // VIR_CONNECT_LIST_DOMAINS_ACTIVE
        guard count >= 0, let list else {
            throw LibvirtError(code: .callFailed, message: "listing the domains at \(uri) failed: \(api.lastError())")
        }
        defer { free(list) }
        var domains: [(LibvirtDomain, LibvirtDomainState?)] = []
        for index in 0..<Int(count) {
            guard let pointer = list[index] else { continue }
            defer { _ = api.domainFree(pointer) }
            domains.append((Self.domain(pointer, api: api), state(of: pointer)))
        }
        return domains
    }

    /// A domain's state now, or `nil` when libvirt cannot tell (it stopped meanwhile).
    private func state(of domain: OpaquePointer) -> LibvirtDomainState? {
        var state: Int32 = 0
        var reason: Int32 = 0
        guard api.domainGetState(domain, &state, &reason, 0) == 0 else { return nil }
        return LibvirtDomainState(state: state, reason: reason)
    }

    /// The hypervisor's version as libvirt reports it (`7.2.22` for QEMU 7.2.22), or `nil`.
    ///
    /// It is the QEMU binary libvirt probed; domains started before an upgrade may run an older one.
    public func hypervisorVersion() -> String? {
        var version: UInt = 0
        guard api.connectGetVersion(connection, &version) == 0, version > 0 else { return nil }
        return "\(version / 1_000_000).\(version / 1000 % 1000).\(version % 1000)"
    }

    /// Deregisters and closes; no notice is delivered after this returns. Safe to call twice.
    public func close() {
        let wasClosed = closed.withLock { closed in
            defer { closed = true }
            return closed
        }
        guard !wasClosed else { return }
        // On a connection that is already gone these fail: nothing more to undo then.
        _ = api.qemuMonitorEventDeregister(connection, registrations.monitor)
        _ = api.connectDomainEventDeregisterAny(connection, registrations.lifecycle)
        _ = api.connectUnregisterCloseCallback(connection, Self.onClose)
        _ = api.connectClose(connection)
    }

    deinit {
        close()
    }

    static func domain(_ pointer: OpaquePointer?, api: LibvirtAPI) -> LibvirtDomain {
        var uuid = [CChar](repeating: 0, count: 37)  // VIR_UUID_STRING_BUFLEN
        _ = api.domainGetUUIDString(pointer, &uuid)
        let id = api.domainGetID(pointer)
        return LibvirtDomain(
            name: api.domainGetName(pointer).map { String(cString: $0) } ?? "",
            uuid: String(decoding: uuid.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
            id: id == UInt32.max ? nil : id
        )
    }

    // The C callbacks: no captures; the box arrives as `opaque`.

    private static let onClose: LibvirtAPI.CloseCallback = { _, reason, opaque in
        guard let opaque else { return }
        CallbackBox.from(opaque).handler(.closed(reason: reason))
    }

    private static let onLifecycle: LibvirtAPI.LifecycleCallback = { _, domain, event, detail, opaque in
        guard let opaque else { return 0 }
        let box = CallbackBox.from(opaque)
        switch event {
        case 2: box.handler(.started(LibvirtConnection.domain(domain, api: box.api), detail: detail))
        case 5: box.handler(.stopped(LibvirtConnection.domain(domain, api: box.api), detail: detail))
        default: break  // suspended, resumed, … : the QMP events say the same, with more
        }
        return 0
    }

    private static let onMonitorEvent: LibvirtAPI.MonitorEventCallback = {
        _,
        domain,
        event,
        seconds,
        microseconds,
        details,
        opaque in
        guard let opaque, let event else { return }
        let box = CallbackBox.from(opaque)
        box.handler(
            .monitorEvent(
                LibvirtConnection.domain(domain, api: box.api),
                name: String(cString: event),
                seconds: seconds,
                microseconds: Int64(microseconds),
                data: details.map { String(cString: $0) }
            )
        )
    }

    private static let release: LibvirtAPI.FreeCallback = { opaque in
        guard let opaque else { return }
        Unmanaged<CallbackBox>.fromOpaque(opaque).release()
    }
}

/// What the C callbacks need, passed to libvirt as their `opaque` pointer.
private final class CallbackBox: Sendable {
    let api: LibvirtAPI
    let handler: @Sendable (LibvirtNotice) -> Void

    init(api: LibvirtAPI, handler: @escaping @Sendable (LibvirtNotice) -> Void) {
        self.api = api
        self.handler = handler
    }

    /// A +1 reference for one registration.
    func retained() -> UnsafeMutableRawPointer {
        Unmanaged.passRetained(self).toOpaque()
    }

    static func from(_ opaque: UnsafeMutableRawPointer) -> CallbackBox {
        Unmanaged<CallbackBox>.fromOpaque(opaque).takeUnretainedValue()
    }
}

/// libvirt's default event loop, which delivers every connection's callbacks: registered once per
/// process, run by one thread for the rest of its life.
enum LibvirtEventLoop {
    private static let started = Mutex(false)

    static func start(_ api: LibvirtAPI) throws(LibvirtError) {
        let failed = started.withLock { started -> Bool in
            guard !started else { return false }
            guard api.eventRegisterDefaultImpl() == 0 else { return true }
            started = true
            var thread = pthread_t()
            let box = Unmanaged.passRetained(LoopBox(api: api)).toOpaque()
            return pthread_create(
                &thread,
                nil,
                { opaque in
                    guard let opaque else { return nil }
                    let api = Unmanaged<LoopBox>.fromOpaque(opaque).takeRetainedValue().api
                    while true { _ = api.eventRunDefaultImpl() }
                },
                box
            ) != 0
        }
        if failed {
            throw LibvirtError(
                code: .connectionFailed,
                message: "libvirt's event loop could not start: \(api.lastError())"
            )
        }
    }

    private final class LoopBox: Sendable {
        let api: LibvirtAPI
        init(api: LibvirtAPI) { self.api = api }
    }
}
