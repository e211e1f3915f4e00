"""Frame and line sources (camera, replay, serial, stdin) and the QR decoder chain.

    >>> from kiosk.scanner import open_source, Decoder          # doctest: +SKIP
    >>> with open_source(cfg, demo_dir=frames) as source:        # doctest: +SKIP
    ...     item = source.read(timeout=0.5)
    ...     codes = Decoder(cfg.decoder).decode(item.image).codes

OpenCV, zxing-cpp, zbar and pyserial are imported only when a source or decoder is used.
"""

from kiosk.scanner.base import EndOfStream, Frame, Line, Source
from kiosk.scanner.sources import open_source
from kiosk.scanner.decoder import Code, DecodeResult, Decoder
from kiosk.scanner.stream import StreamDecoder

__all__ = ["Code", "DecodeResult", "Decoder", "EndOfStream", "Frame", "Line", "Source", "StreamDecoder",
           "open_source"]
