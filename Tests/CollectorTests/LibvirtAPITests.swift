import Testing

@testable import Libvirt

struct LibvirtAPITests {
    @Test func aHostWithoutLibvirtIsToldWhatToInstall() throws {
        // Given libraries that do not exist
        let error = #expect(throws: LibvirtError.self) {
            try LibvirtAPI(main: "libvirt-qmplog-absent.so.0", qemu: "libvirt-qemu-qmplog-absent.so.0")
        }
        // Then the error names the package
        #expect(error?.code == .libraryMissing)
        #expect(error?.message.contains("apt-get install libvirt0") == true, "\(String(describing: error))")
    }

    @Test func onlyFunctionsThatChangeNoDomainAreLoaded() {
        // qmplog is read-only towards VMs: what is not loaded cannot be called.
        let readOnly = [
            "virEventRegisterDefaultImpl", "virEventRunDefaultImpl", "virConnectOpen", "virConnectClose",
            "virConnectSetKeepAlive", "virConnectGetVersion", "virConnectRegisterCloseCallback",
            "virConnectUnregisterCloseCallback", "virConnectDomainEventRegisterAny",
            "virConnectDomainEventDeregisterAny", "virConnectListAllDomains", "virDomainGetName",
            "virDomainGetUUIDString", "virDomainGetID", "virDomainGetState", "virDomainFree", "virGetLastErrorMessage",
            "virSetErrorFunc", "virConnectDomainQemuMonitorEventRegister", "virConnectDomainQemuMonitorEventDeregister",
        ]
        #expect(Set(LibvirtAPI.symbols) == Set(readOnly))
        #expect(!LibvirtAPI.symbols.contains { $0.contains("MonitorCommand") })
    }

    @Test(arguments: [
        (LibvirtDomainState(state: 1, reason: 1), "running", true),
        (LibvirtDomainState(state: 3, reason: 1), "paused", false),
        (LibvirtDomainState(state: 3, reason: 5), "io-error", false),
        (LibvirtDomainState(state: 3, reason: 10), "guest-panicked", false),
        (LibvirtDomainState(state: 3, reason: 11), "prelaunch", false),
        (LibvirtDomainState(state: 7, reason: 0), "suspended", false),
        (LibvirtDomainState(state: 99, reason: 0), "unknown", false),
    ])
    func libvirtStatesReadAsQEMURunStates(state: LibvirtDomainState, status: String, running: Bool) {
        #expect(state.qmpStatus == status)
        #expect(state.isRunning == running)
    }
}
