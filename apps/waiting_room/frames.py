"""A broadcast framed once and written as is to every socket of the ws process.

The ASGI ``send`` of a WebSocket frames each message for its socket: under uvicorn's
websockets-sansio protocol about a fifth of a broadcast's CPU is that framing (a Frame, its
checks and serialisation, per socket), the same bytes every time. A server-to-client text
frame without extensions is a two-to-ten-byte header and the payload, so the feed builds it
once (``text_frame``) and ``DirectWriter`` writes it to the socket's transport.

This reaches into the server's protocol object, so it is used only where everything it
relies on is checked on connect (the protocol class of the pinned uvicorn, no extension
negotiated: permessage-deflate would need a frame per socket) and again before each write
(open, nothing closing, the transport not applying back-pressure). Anywhere else, the
message goes through the ASGI ``send``."""

from __future__ import annotations

SANSIO_PROTOCOL = "WebSocketsSansIOProtocol"


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final text frame (RFC 6455 §5.2) carrying ``payload``."""
    length = len(payload)
    if length < 126:
        header = bytes((0x81, length))
    elif length < 1 << 16:
        header = bytes((0x81, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + length.to_bytes(8, "big")
    return header + payload


class DirectWriter:
    """Writes pre-built frames to one uvicorn websockets-sansio connection."""

    __slots__ = ("protocol",)

    def __init__(self, protocol):
        self.protocol = protocol

    @classmethod
    def of(cls, send) -> DirectWriter | None:
        """The writer for the socket behind ``send``, or None when ``send`` is not the
        protocol's own (another server, a middleware's wrapper, a test communicator) or an
        extension was negotiated."""
        protocol = getattr(send, "__self__", None)
        if protocol is None or type(protocol).__name__ != SANSIO_PROTOCOL:
            return None
        if getattr(send, "__name__", "") != "send":
            return None
        try:
            if protocol.conn.extensions or not protocol.handshake_complete:
                return None
            protocol.transport.is_closing()
            protocol.writable.is_set()
            _ = protocol.close_sent, protocol.disconnected, protocol.initial_response
        except AttributeError:
            return None
        return cls(protocol)

    def write(self, frame: bytes) -> bool:
        """Write ``frame``; True when the socket is dealt with. A socket that is closing, or
        whose reader has fallen behind (the transport applies back-pressure), skips this
        message rather than holding up the broadcast for every other socket: each sale
        message is the whole state, and the next one brings it. False: send it the ordinary
        way."""
        protocol = self.protocol
        if protocol.initial_response is not None:
            return False
        if (
            protocol.close_sent
            or protocol.disconnected
            or protocol.transport.is_closing()
            or not protocol.writable.is_set()
        ):
            return True
        protocol.transport.write(frame)
        return True
