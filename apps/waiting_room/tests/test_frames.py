"""The broadcast's frame, built once, is byte for byte what the server's own framing sends."""

import pytest
from websockets.frames import Frame, Opcode

from apps.waiting_room.frames import DirectWriter, text_frame


@pytest.mark.parametrize("size", [0, 5, 125, 126, 300, 65535, 65536, 70000])
def test_text_frame_matches_the_websockets_serialiser(size):
    payload = b"x" * size
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert text_frame(payload) == expected


def test_only_the_servers_own_send_is_written_to_directly():
    async def send(message):  # a test communicator's, another server's, a wrapper's
        return None

    assert DirectWriter.of(send) is None
    assert DirectWriter.of(print) is None
