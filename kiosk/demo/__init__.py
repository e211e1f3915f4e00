"""What `kiosk demo`, the tests and the benchmarks run on, kept out of the production
packages: nothing under kiosk.checks, kiosk.scanner or kiosk.display imports this.

    material   a self-made trust list (DSC and declaration issuer) and QR texts for each verdict
    frames     synthetic gate-camera frames: a QR code on a phone, card or paper
    screens    sample screen states for review (`kiosk screens`)
    runner     `kiosk demo`: the whole appliance on that material, with a local collector
"""

__all__: list[str] = []
