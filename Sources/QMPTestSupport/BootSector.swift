public import Foundation

/// Tiny x86 boot sectors that make a guest do one thing, for guest-initiated events on real QEMU.
///
/// SeaBIOS loads sector 0 at 0x7C00 and jumps to it in real mode; each program then halts forever.
public enum BootSector: Sendable {
    /// ACPI soft-off: writes SLP_EN with sleep type 0 (S5 on PIIX4) to PM1a_CNT at 0x604, where
    /// SeaBIOS maps the PIIX4 PM block. QEMU: SHUTDOWN guest=true, reason guest-shutdown.
    case acpiPowerOff
    /// Pulses the reset line through the keyboard controller (0xFE to port 0x64).
    /// QEMU: RESET guest=true, reason guest-reset; with `-no-reboot`, SHUTDOWN guest=true, reason guest-reset.
    case keyboardControllerReset
    /// Sleeps with interrupts on, forever: a guest that just runs (no disk would make SeaBIOS
    /// reboot every minute looking for one).
    case idle
    /// Enables the ACPI power button (PM1_EN bit 8 at 0x602), polls its status (PM1_STS at 0x600)
    /// after each timer tick, and powers off (S5) once it is pressed: a guest that answers
    /// `system_powerdown` / `virsh shutdown`. QEMU: POWERDOWN, then SHUTDOWN guest=true, reason guest-shutdown.
    case powerButtonPowerOff
    /// ACPI S3 suspend-to-RAM: writes SLP_EN with sleep type 1 (S3 on PIIX4) to PM1a_CNT at 0x604.
    /// QEMU: SUSPEND; after `system_wakeup`, WAKEUP (SeaBIOS then boots the sector again).
    case acpiSuspend
    /// Reads sector 0 of the secondary IDE channel's master disk (ATA READ SECTORS, PIO), then
    /// sleeps. With that disk behind `blkdebug` injecting EIO and `rerror=stop`: BLOCK_IO_ERROR
    /// (action stop), then STOP. (QEMU 7.2 asserts on a read error of a *slave* disk with
    /// `rerror=stop`: keep it a master.)
    case secondaryDiskRead
    /// Arms an ib700 watchdog (`-device ib700`) for 2 s and never feeds it; after a watchdog reset
    /// the guest boots again and re-arms it, so with `-action watchdog=reset` it fires every ~2 s.
    /// QEMU: WATCHDOG with the `-action watchdog=` action.
    case ib700Watchdog
    /// Writes 1 (PANICKED) to the ISA pvpanic device at 0x505 (`-device pvpanic`). QEMU: GUEST_PANICKED.
    case pvpanic

    var code: [UInt8] {
        let haltForever: [UInt8] = [0xF4, 0xEB, 0xFD]  // hlt; jmp back to hlt
        switch self {
        case .acpiPowerOff:
            // mov dx,0x604; mov ax,0x2000; out dx,ax
            return [0xBA, 0x04, 0x06, 0xB8, 0x00, 0x20, 0xEF] + haltForever
        case .keyboardControllerReset:
            // mov al,0xFE; out 0x64,al
            return [0xB0, 0xFE, 0xE6, 0x64] + haltForever
        case .idle:
            return [0xFB] + haltForever  // sti
        case .powerButtonPowerOff:
            // mov dx,0x602; mov ax,0x100; out dx,ax; sti
            // wait: hlt; mov dx,0x600; in ax,dx; test ax,0x100; jz wait
            // mov dx,0x604; mov ax,0x2000; out dx,ax
            return [0xBA, 0x02, 0x06, 0xB8, 0x00, 0x01, 0xEF, 0xFB]
                + [0xF4, 0xBA, 0x00, 0x06, 0xED, 0xA9, 0x00, 0x01, 0x74, 0xF6]
                + [0xBA, 0x04, 0x06, 0xB8, 0x00, 0x20, 0xEF] + haltForever
        case .acpiSuspend:
            // mov dx,0x604; mov ax,0x2400; out dx,ax
            return [0xBA, 0x04, 0x06, 0xB8, 0x00, 0x24, 0xEF] + haltForever
        case .secondaryDiskRead:
            // mov dx,0x176; mov al,0xe0 (LBA, master); out dx,al — then count 1, LBA 0, READ SECTORS (0x20)
            return [0xBA, 0x76, 0x01, 0xB0, 0xE0, 0xEE, 0xBA, 0x72, 0x01, 0xB0, 0x01, 0xEE]
                + [0xBA, 0x73, 0x01, 0x30, 0xC0, 0xEE, 0xBA, 0x74, 0x01, 0xEE, 0xBA, 0x75, 0x01, 0xEE]
                + [0xBA, 0x77, 0x01, 0xB0, 0x20, 0xEE, 0xFB] + haltForever
        case .ib700Watchdog:
            // mov dx,0x443; mov al,0x0e (time_map[14]: 2 s); out dx,al; sti
            return [0xBA, 0x43, 0x04, 0xB0, 0x0E, 0xEE, 0xFB] + haltForever
        case .pvpanic:
            // mov dx,0x505; mov al,1; out dx,al
            return [0xBA, 0x05, 0x05, 0xB0, 0x01, 0xEE] + haltForever
        }
    }

    /// A 64 KiB raw disk image whose first sector is this program.
    public var diskImage: Data {
        var sector = code + [UInt8](repeating: 0, count: 510 - code.count) + [0x55, 0xAA]
        sector += [UInt8](repeating: 0, count: 65536 - sector.count)
        return Data(sector)
    }
}
