"""Every word the screen shows, Vietnamese first and English second.

Citizens read these from two metres away in a few seconds, so each line is short and
plain: what happened, not how the decoder failed. Every `kiosk.model.Reason` has a line
in both languages (a test checks it), and every fault kind has a title and a detail.

    >>> reason_text(Reason.EXPIRED).vi
    'Chứng nhận đã hết hạn'
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from kiosk.model import Reason

__all__ = [
    "Bilingual",
    "FAULT_TEXTS",
    "NBSP",
    "PENDING_COUNT",
    "REASON_TEXTS",
    "VERDICT_TEXTS",
    "fault_text",
    "nb",
    "reason_text",
]


@dataclass(frozen=True)
class Bilingual:
    vi: str
    en: str

    def __post_init__(self) -> None:
        # Precomposed letters (NFC): the renderer does no shaping, so a combining
        # accent typed separately would float beside its letter.
        object.__setattr__(self, "vi", unicodedata.normalize("NFC", self.vi))
        object.__setattr__(self, "en", unicodedata.normalize("NFC", self.en))


B = Bilingual

#: A no-break space: the screen's line breaking keeps the words it joins together.
NBSP = "\u00a0"


def nb(words: str) -> str:
    """`words` joined by no-break spaces, so a line never breaks inside them
    ("Đang đọc mã…" stays whole, "bình thường" is never split)."""
    return NBSP.join(words.split(" "))


#: The huge word on a verdict screen.
VERDICT_TEXTS: dict[str, Bilingual] = {
    "pass": B("MỜI VÀO", "Welcome"),
    "fail": B("KHÔNG ĐẠT", "Not admitted"),
    "review": B("VUI LÒNG GẶP BẢO VỆ", "Please see the guard"),
}

#: One plain line per reason code, shown under the verdict.
REASON_TEXTS: dict[Reason, Bilingual] = {
    # decode
    Reason.BAD_PREFIX: B("Mã QR này không phải chứng nhận hợp lệ", "This QR code is not a valid certificate"),
    Reason.BAD_BASE45: B("Mã QR bị hỏng, không đọc được", "The QR code is damaged and cannot be read"),
    Reason.BAD_COMPRESSION: B("Mã QR bị hỏng, dữ liệu không giải nén được",
                              "The QR code is damaged: its data cannot be unpacked"),
    Reason.BAD_COSE: B("Mã QR bị hỏng, thiếu phần chữ ký", "The QR code is damaged: the signed part is broken"),
    Reason.BAD_CBOR: B("Mã QR bị hỏng, dữ liệu bị lỗi", "The QR code is damaged: its data is broken"),
    Reason.BAD_SCHEMA: B("Nội dung chứng nhận không đúng mẫu", "The certificate content is not in the expected form"),
    Reason.UNKNOWN_SCHEME: B("Không nhận ra loại mã QR này", "This kind of QR code is not recognised"),
    # trust
    Reason.UNKNOWN_KEY: B("Không xác minh được nơi cấp chứng nhận", "The issuer of this certificate is not known"),
    Reason.BAD_SIGNATURE: B("Chữ ký số không hợp lệ", "The digital signature is not valid"),
    Reason.KEY_USAGE: B("Nơi cấp không được cấp loại chứng nhận này",
                        "The issuer may not issue this kind of certificate"),
    Reason.REVOKED: B("Chứng nhận đã bị thu hồi", "This certificate has been revoked"),
    # time
    Reason.EXPIRED: B("Chứng nhận đã hết hạn", "This certificate has expired"),
    Reason.NOT_YET_VALID: B("Chứng nhận chưa có hiệu lực", "This certificate is not valid yet"),
    Reason.CLOCK_UNSYNCED: B("Đồng hồ của máy chưa đúng, không kiểm tra được hạn",
                             "The kiosk's clock is not set, so dates cannot be checked"),
    Reason.DATA_EXPIRED: B("Dữ liệu kiểm tra trên máy đã quá hạn, bảo vệ sẽ kiểm tra",
                           "The kiosk's check data is out of date; the guard will check"),
    # policy
    Reason.NOT_VACCINATED: B("Chưa tiêm đủ số mũi theo quy định", "Not enough vaccine doses for this venue"),
    Reason.VACCINATION_TOO_RECENT: B("Mũi tiêm cuối chưa đủ số ngày quy định", "The last dose is too recent"),
    Reason.VACCINATION_TOO_OLD: B("Mũi tiêm cuối đã quá thời hạn quy định", "The last dose was too long ago"),
    Reason.TEST_TOO_OLD: B("Kết quả xét nghiệm đã quá hạn", "The test result is too old"),
    Reason.TEST_POSITIVE: B("Kết quả xét nghiệm dương tính", "The test result is positive"),
    Reason.RECOVERY_TOO_OLD: B("Giấy xác nhận khỏi bệnh đã quá hạn", "The recovery certificate is too old"),
    Reason.DECLARATION_TOO_OLD: B("Tờ khai y tế đã cũ, vui lòng khai báo lại",
                                  "The health declaration is too old; please declare again"),
    Reason.SYMPTOMS: B("Tờ khai có triệu chứng bệnh", "The declaration reports symptoms"),
    Reason.EXPOSURE: B("Tờ khai có tiếp xúc với ca bệnh", "The declaration reports contact with a case"),
    Reason.TRAVEL: B("Tờ khai có đi qua vùng dịch", "The declaration reports travel through an outbreak area"),
    Reason.STATUS_RED: B("Trạng thái sức khoẻ: đỏ", "Health status: red"),
    Reason.IDENTITY_ONLY: B("Chỉ có giấy tờ tuỳ thân, cần thêm chứng nhận y tế",
                            "Identity card only; a health certificate is needed"),
    Reason.DENIED: B("Mã này không được phép vào", "This code is not allowed in"),
    Reason.REPEAT_SCAN: B("Mã này vừa được quét", "This code was just scanned"),
    # pass / guard
    Reason.OK: B("Chứng nhận hợp lệ", "Certificate valid"),
    Reason.OVERRIDE: B("Bảo vệ đã cho phép vào", "Admitted by the guard"),
    # a technician's provisioning QR
    Reason.PROVISION_PENDING: B("Đã nhận mã cài đặt, đang đăng ký với máy chủ",
                                "Provisioning QR accepted; enrolling with the collector"),
    Reason.PROVISIONED: B("Đã cài đặt thiết bị theo mã của kỹ thuật viên",
                          "Device configured from the technician's QR"),
    Reason.ENROL_FAILED: B("Không đăng ký được với máy chủ, cấu hình không đổi",
                           "Enrolment with the collector failed; nothing was changed"),
}

#: Fault kinds: (title, what to do). `{pending}` is the number of entries waiting to upload.
FAULT_TEXTS: dict[str, tuple[Bilingual, Bilingual]] = {
    "camera_fault": (B("Camera gặp sự cố", "Camera fault"),
                     B(f"Vui lòng gọi {nb('nhân viên')}", "Please call the staff")),
    "scanner_fault": (B(f"{nb('Đầu đọc mã')} gặp sự cố", "Scanner fault"),
                      B(f"Vui lòng gọi {nb('nhân viên')}", "Please call the staff")),
    "offline": (B("Mất kết nối mạng", "Offline"),
                B(f"Vẫn kiểm tra {nb('bình thường ·')} {nb('{pending} lượt chờ gửi')}",
                  f"Checking {nb('continues ·')} {nb('{pending} entries')} waiting to upload")),
    # The collector refuses entries (another venue's, logged before enrolment): they stay
    # here for ever unless a technician acts (issue 23 item 2).
    "uploads_refused": (B(f"Máy chủ {nb('từ chối')} dữ liệu", "The collector refuses this kiosk's entries"),
                        B(f"{nb('{pending} lượt')} không gửi {nb('được ·')} vui lòng gọi {nb('nhân viên')}",
                          f"{nb('{pending} entries')} cannot be {nb('uploaded ·')} please call the staff")),
    "collector_untrusted": (B(f"Máy chủ không có chữ ký của {nb('Sở Y tế')}",
                              "Collector not signed by the health department"),
                            B(f"Không dùng dữ liệu máy chủ này {nb('gửi ·')} vui lòng gọi {nb('nhân viên')}",
                              f"Nothing it sends is {nb('used ·')} please call the staff")),
    "trust_stale": (B(f"{nb('Danh sách')} {nb('khoá tin cậy')} đã cũ", "Trust list out of date"),
                    B("Cần kết nối mạng để cập nhật", "Connect to the network to update it")),
    "clock_unsynced": (B("Đồng hồ chưa được đồng bộ", "Clock not synchronised"),
                       B("Không kiểm tra được hạn chứng nhận", "Certificate dates cannot be checked")),
    "disk_full": (B("Bộ nhớ sắp đầy", "Disk nearly full"),
                  B(f"Vui lòng gọi {nb('nhân viên')}", "Please call the staff")),
    # The journal cannot be written for another reason than space: a card the kernel
    # remounted read-only, a journal file or folder the kiosk may not write.
    "journal_fault": (B(f"Không {nb('ghi được')} {nb('nhật ký')}", "The journal cannot be written"),
                      B(f"Vui lòng gọi {nb('nhân viên')}", "Please call the staff")),
}

IDLE_HOW = B("Đưa mã QR vào trước máy quét", "Hold your QR code up to the scanner")
IDLE_PHONE = B(f"Quét bằng {nb('điện thoại')} để {nb('khai báo')}", f"Scan with {nb('your phone')} to {nb('check in')}")
IDLE_TODAY = B("Hôm nay: {count} lượt", "Today: {count} check-ins")
SCANNING = B(nb("Đang đọc mã…"), nb("Reading the code…"))
#: The offline banner's count: what the number is ("Offline (42)" said 42 of what?).
PENDING_COUNT = B("{pending} lượt chờ gửi", "{pending} waiting to upload")
SCANNING_HOLD = B("Giữ mã QR yên trong khung", "Hold the code still inside the box")


def reason_text(reason: Reason | str | None) -> Bilingual | None:
    """The plain-words line for a reason code (a `Reason` or its string value)."""
    if reason is None:
        return None
    try:
        return REASON_TEXTS[Reason(reason)]
    except ValueError:
        return None


def fault_text(kind: str, *, pending: int = 0) -> tuple[Bilingual, Bilingual]:
    """Title and detail for a fault kind, with the pending-upload count filled in."""
    title, detail = FAULT_TEXTS[kind]
    return title, B(detail.vi.format(pending=pending), detail.en.format(pending=pending))
