#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The libvirt functions qmplog calls, loaded from `libvirt.so.0` and `libvirt-qemu.so.0` at run time.
///
/// Loading at run time keeps libvirt out of the build and out of the binary's dependencies: qmplog
/// builds and runs on hosts without libvirt, and only `record --libvirt` needs it. libvirt's C ABI
/// is stable (functions are only ever added), so the signatures below, copied from its headers,
/// hold for every version since 1.2.3 (the QMP passthrough's first).
///
/// This list is also the read-only guarantee: it holds no function that changes a domain, and not
/// `virDomainQemuMonitorCommand` (which sends any command and taints the domain). Code that is not
/// loaded cannot be called.
package final class LibvirtAPI: @unchecked Sendable {
    // Signatures from libvirt-host.h, libvirt-domain.h, libvirt-event.h, virterror.h, libvirt-qemu.h.
    // `virConnectPtr` and `virDomainPtr` are opaque pointers.
    typealias ErrorCallback = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void
    typealias FreeCallback = @convention(c) (UnsafeMutableRawPointer?) -> Void
    typealias CloseCallback = @convention(c) (OpaquePointer?, Int32, UnsafeMutableRawPointer?) -> Void
    typealias LifecycleCallback =
        @convention(c) (OpaquePointer?, OpaquePointer?, Int32, Int32, UnsafeMutableRawPointer?) -> Int32
    typealias MonitorEventCallback =
        @convention(c) (
            OpaquePointer?, OpaquePointer?, UnsafePointer<CChar>?, Int64, UInt32, UnsafePointer<CChar>?,
            UnsafeMutableRawPointer?
        ) -> Void

    let eventRegisterDefaultImpl: @convention(c) () -> Int32
    let eventRunDefaultImpl: @convention(c) () -> Int32
    let connectOpen: @convention(c) (UnsafePointer<CChar>?) -> OpaquePointer?
    let connectClose: @convention(c) (OpaquePointer?) -> Int32
    let connectSetKeepAlive: @convention(c) (OpaquePointer?, Int32, UInt32) -> Int32
    let connectGetVersion: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UInt>?) -> Int32
    let connectRegisterCloseCallback:
        @convention(c) (OpaquePointer?, CloseCallback?, UnsafeMutableRawPointer?, FreeCallback?) -> Int32
    let connectUnregisterCloseCallback: @convention(c) (OpaquePointer?, CloseCallback?) -> Int32
    /// The lifecycle callback is passed as libvirt's generic `void (*)(void)`.
    let connectDomainEventRegisterAny:
        @convention(c) (
            OpaquePointer?, OpaquePointer?, Int32, UnsafeRawPointer?, UnsafeMutableRawPointer?, FreeCallback?
        ) -> Int32
    let connectDomainEventDeregisterAny: @convention(c) (OpaquePointer?, Int32) -> Int32
    let connectListAllDomains:
        @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafeMutablePointer<OpaquePointer?>?>?, UInt32) -> Int32
    let domainGetName: @convention(c) (OpaquePointer?) -> UnsafePointer<CChar>?
    let domainGetUUIDString: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?) -> Int32
    let domainGetID: @convention(c) (OpaquePointer?) -> UInt32
    let domainGetState:
        @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?, UInt32) -> Int32
    let domainFree: @convention(c) (OpaquePointer?) -> Int32
    let getLastErrorMessage: @convention(c) () -> UnsafePointer<CChar>?
    /// `virSetErrorFunc`: without a handler of ours, libvirt prints every error to stderr itself.
    let setErrorFunc: @convention(c) (UnsafeMutableRawPointer?, ErrorCallback?) -> Void
    let qemuMonitorEventRegister:
        @convention(c) (
            OpaquePointer?, OpaquePointer?, UnsafePointer<CChar>?, MonitorEventCallback?, UnsafeMutableRawPointer?,
            FreeCallback?, UInt32
        ) -> Int32
    let qemuMonitorEventDeregister: @convention(c) (OpaquePointer?, Int32) -> Int32

    /// Every symbol loaded: the whole of libvirt qmplog can reach.
    package static let symbols = [
        "virEventRegisterDefaultImpl", "virEventRunDefaultImpl", "virConnectOpen", "virConnectClose",
        "virConnectSetKeepAlive", "virConnectGetVersion", "virConnectRegisterCloseCallback",
        "virConnectUnregisterCloseCallback", "virConnectDomainEventRegisterAny", "virConnectDomainEventDeregisterAny",
        "virConnectListAllDomains", "virDomainGetName", "virDomainGetUUIDString", "virDomainGetID",
        "virDomainGetState", "virDomainFree", "virGetLastErrorMessage", "virSetErrorFunc",
        "virConnectDomainQemuMonitorEventRegister", "virConnectDomainQemuMonitorEventDeregister",
    ]

    /// The libraries as Debian's `libvirt0` installs them.
    package static let defaultLibraries = (main: "libvirt.so.0", qemu: "libvirt-qemu.so.0")

    /// Loads the libraries once per process; later calls return the same functions (or error).
    ///
    /// - Throws: ``LibvirtError`` `.libraryMissing` naming the library or function and the package to install.
    package static func shared() throws(LibvirtError) -> LibvirtAPI {
        switch loaded {
        case .success(let api): return api
        case .failure(let error): throw error
        }
    }

    private static let loaded = Result { () throws(LibvirtError) in
        try LibvirtAPI(main: defaultLibraries.main, qemu: defaultLibraries.qemu)
    }

    /// Loads `main` and `qemu` (library names or paths) and resolves ``symbols``.
    package init(main: String, qemu: String) throws(LibvirtError) {
        let mainHandle = try Self.open(main)
        let qemuHandle = try Self.open(qemu)
        func load<T>(_ name: String, from handle: UnsafeMutableRawPointer, library: String) throws(LibvirtError) -> T {
            guard let symbol = dlsym(handle, name) else {
                throw LibvirtError(
                    code: .libraryMissing,
                    message: "\(library) has no function \(name): libvirt is too old for qmplog (1.2.3 or later needed)"
                )
            }
            return unsafeBitCast(symbol, to: T.self)
        }
        eventRegisterDefaultImpl = try load("virEventRegisterDefaultImpl", from: mainHandle, library: main)
        eventRunDefaultImpl = try load("virEventRunDefaultImpl", from: mainHandle, library: main)
        connectOpen = try load("virConnectOpen", from: mainHandle, library: main)
        connectClose = try load("virConnectClose", from: mainHandle, library: main)
        connectSetKeepAlive = try load("virConnectSetKeepAlive", from: mainHandle, library: main)
        connectGetVersion = try load("virConnectGetVersion", from: mainHandle, library: main)
        connectRegisterCloseCallback = try load("virConnectRegisterCloseCallback", from: mainHandle, library: main)
        connectUnregisterCloseCallback = try load("virConnectUnregisterCloseCallback", from: mainHandle, library: main)
        connectDomainEventRegisterAny = try load("virConnectDomainEventRegisterAny", from: mainHandle, library: main)
        connectDomainEventDeregisterAny = try load(
            "virConnectDomainEventDeregisterAny",
            from: mainHandle,
            library: main
        )
        connectListAllDomains = try load("virConnectListAllDomains", from: mainHandle, library: main)
        domainGetName = try load("virDomainGetName", from: mainHandle, library: main)
        domainGetUUIDString = try load("virDomainGetUUIDString", from: mainHandle, library: main)
        domainGetID = try load("virDomainGetID", from: mainHandle, library: main)
        domainGetState = try load("virDomainGetState", from: mainHandle, library: main)
        domainFree = try load("virDomainFree", from: mainHandle, library: main)
        getLastErrorMessage = try load("virGetLastErrorMessage", from: mainHandle, library: main)
        setErrorFunc = try load("virSetErrorFunc", from: mainHandle, library: main)
        // Errors reach the user through the messages of the errors qmplog throws and logs.
        setErrorFunc(nil) { _, _ in }
        qemuMonitorEventRegister = try load(
            "virConnectDomainQemuMonitorEventRegister",
            from: qemuHandle,
            library: qemu
        )
        qemuMonitorEventDeregister = try load(
            "virConnectDomainQemuMonitorEventDeregister",
            from: qemuHandle,
            library: qemu
        )
    }

    private static func open(_ library: String) throws(LibvirtError) -> UnsafeMutableRawPointer {
        guard let handle = dlopen(library, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "not found"
            throw LibvirtError(
                code: .libraryMissing,
                message: "--libvirt needs libvirt's client libraries, which are not installed "
                    + "(Debian/Ubuntu: apt-get install libvirt0; Fedora: dnf install libvirt-libs): \(reason)"
            )
        }
        return handle
    }

    /// libvirt's text for the last error of this thread.
    func lastError() -> String {
        getLastErrorMessage().map { String(cString: $0) } ?? "unknown libvirt error"
    }
}
