"""Ping1D protocol core: frames built with brping's own PingMessage, fed through Ping1D."""
import math
import socket
import struct
import time

import numpy as np
import pytest
from brping import definitions
from brping.pingmessage import PingMessage, PingParser

from asv_autonomy.drivers.ping1d import (Ping1D, Ping1DConfig, UdpLink, frame,
                                         unpack_header)

PING1D = {**definitions.payload_dict_common, **definitions.payload_dict_ping1d}


def brping_frame(message_id, **fields) -> bytes:
    """A frame packed by brping itself (not by the module under test)."""
    msg = PingMessage(message_id, payload_dict=PING1D)
    for name, value in fields.items():
        setattr(msg, name, value)
    return bytes(msg.pack_msg_data())


def simple(distance_mm, confidence):
    return brping_frame(definitions.PING1D_DISTANCE_SIMPLE, distance=distance_mm,
                        confidence=confidence)


def full(distance_mm, confidence, ping_number=7):
    return brping_frame(definitions.PING1D_DISTANCE, distance=distance_mm,
                        confidence=confidence, transmit_duration=100, ping_number=ping_number,
                        scan_start=0, scan_length=20000, gain_setting=3)


def profile(distance_mm, confidence, samples=200):
    return brping_frame(definitions.PING1D_PROFILE, distance=distance_mm, confidence=confidence,
                        profile_data_length=samples,
                        profile_data=bytearray(range(samples)))


def test_distance_messages_give_depth_and_confidence_variance():
    sonar = Ping1D(Ping1DConfig(relative_sigma=0.01, min_sigma=0.05))
    out = sonar.feed(simple(12345, 100) + full(2000, 50) + profile(40000, 25), now=3.5)
    assert not out.rejected
    depths = [r.value for r in out.readings]
    assert depths == pytest.approx([12.345, 2.0, 40.0])
    assert all(r.stamp == 3.5 for r in out.readings)
    # sigma = max(0.01 d, 0.05) * 100 / confidence
    sigmas = [math.sqrt(r.variance) for r in out.readings]
    assert sigmas == pytest.approx([0.12345, 0.05 * 2, 0.4 * 4])
    assert sonar.counts['distance_simple'] == 1 and sonar.counts['profile'] == 1


def test_every_split_of_the_stream_gives_the_same_readings():
    stream = simple(1000, 90) + b'\x00\xffjunk' + full(2500, 80) + simple(3000, 70)
    for cut in range(1, len(stream)):
        sonar = Ping1D()
        a = sonar.feed(stream[:cut], 0.0).readings
        b = sonar.feed(stream[cut:], 0.0).readings
        assert [r.value for r in a + b] == pytest.approx([1.0, 2.5, 3.0]), cut


def test_low_confidence_and_out_of_range_are_dropped_and_counted():
    sonar = Ping1D(Ping1DConfig(min_confidence=20, min_range=0.5, max_range=50.0))
    out = sonar.feed(simple(5000, 0) + simple(5000, 19) + simple(100, 90)
                     + simple(60000, 90) + simple(5000, 20), 0.0)
    assert [r.value for r in out.readings] == [5.0]
    assert out.rejected == {'low_confidence': 2, 'out_of_range': 2}


def test_bad_checksum_truncated_frames_and_garbage_are_counted_not_fatal():
    good = simple(4200, 95)
    corrupted = bytearray(simple(9999, 95))
    corrupted[10] ^= 0x40  # payload changed, checksum left as it was
    stream = (b'\x00\x01garbageBx' + bytes(corrupted) + good
              + good[:9]            # truncated: the next frame completes its "payload"
              + good + full(1500, 60))
    sonar = Ping1D()
    out = sonar.feed(stream, 1.0)
    # Only the corrupted and the truncated frame are lost; the frames after them survive.
    assert [r.value for r in out.readings] == pytest.approx([4.2, 4.2, 1.5])
    assert out.rejected['bad_checksum'] == 2
    assert out.rejected['garbage'] >= 1
    assert sonar.counts['garbage_bytes'] >= len(b'\x00\x01garbageBx')


def test_corrupted_length_or_unknown_id_cannot_swallow_good_frames():
    huge = bytearray(simple(1000, 90))
    huge[2:4] = (60000).to_bytes(2, 'little')  # absurd payload length
    wrong = bytearray(simple(1000, 90))
    wrong[2] = 6  # distance_simple has exactly 5 payload bytes
    unknown = bytearray(simple(1000, 90))
    unknown[4:6] = (2300).to_bytes(2, 'little')  # a Ping360 message id
    sonar = Ping1D()
    out = sonar.feed(bytes(huge) + simple(2000, 90) + bytes(wrong) + simple(3000, 90)
                     + bytes(unknown) + simple(4000, 90), 0.0)
    assert [r.value for r in out.readings] == pytest.approx([2.0, 3.0, 4.0])
    assert out.rejected['bad_length'] == 2 and out.rejected['unknown_id'] == 1


def test_random_bytes_never_crash():
    rng = np.random.default_rng(7)
    sonar = Ping1D()
    good = simple(7000, 80)
    total = 0
    for _ in range(50):
        noise = rng.integers(0, 256, int(rng.integers(0, 80)), dtype=np.uint8).tobytes()
        # Sprinkle frame starts so that headers are parsed, not only skipped.
        noise = noise.replace(b'\x00', b'BR', 3)
        total += len(sonar.feed(noise + good, 0.0).readings)
    assert total >= 45  # noise may occasionally end in a header that eats a frame


def test_nack_and_other_messages_are_counted():
    # brping cannot build a NACK (its constructor chokes on the text field): by hand.
    payload = (1211).to_bytes(2, 'little') + b'busy'
    nack = b'BR' + struct.pack('<HHBB', len(payload), definitions.COMMON_NACK, 1, 0) + payload
    nack += struct.pack('<H', sum(nack) & 0xFFFF)
    ack = brping_frame(definitions.COMMON_ACK, acked_id=1002)
    sonar = Ping1D()
    out = sonar.feed(nack + ack, 0.0)
    assert out.rejected == {'nack': 1} and not out.readings
    assert sonar.counts['ack'] == 1


def decode_all(data: bytes):
    parser = PingParser(PING1D)
    messages = []
    for byte in data:
        if parser.parse_byte(byte) == PingParser.NEW_MESSAGE:
            messages.append(parser.rx_msg)
    return messages


def test_request_mode_asks_for_the_message_at_the_rate():
    sonar = Ping1D(Ping1DConfig(rate=10.0, message='distance', speed_of_sound=1480.0))
    sent = b''.join(sonar.poll(t * 0.01) for t in range(100))  # 1 s
    messages = decode_all(sent)
    requests = [m for m in messages if m.message_id == definitions.COMMON_GENERAL_REQUEST]
    assert len(requests) == 10
    assert all(m.requested_id == definitions.PING1D_DISTANCE for m in requests)
    sos = [m for m in messages if m.message_id == definitions.PING1D_SET_SPEED_OF_SOUND]
    assert len(sos) == 1 and sos[0].speed_of_sound == 1480000  # [mm/s]


def test_continuous_mode_starts_once_and_again_after_silence():
    sonar = Ping1D(Ping1DConfig(mode='continuous', message='profile', reply_timeout=1.0))
    first = decode_all(sonar.poll(0.0))
    assert [m.message_id for m in first] == [definitions.PING1D_SET_PING_ENABLE,
                                            definitions.PING1D_CONTINUOUS_START]
    assert first[1].id == definitions.PING1D_PROFILE
    sonar.feed(profile(3000, 90), 0.5)
    assert sonar.poll(0.6) == b'' and sonar.poll(1.4) == b''  # streaming: nothing to send
    assert not sonar.silent(1.4) and sonar.silent(1.6)
    again = decode_all(sonar.poll(1.6))
    assert [m.message_id for m in again][-1] == definitions.PING1D_CONTINUOUS_START


def test_frame_helper_matches_brping_and_refuses_unknown_fields():
    assert frame(definitions.PING1D_DISTANCE_SIMPLE, distance=5, confidence=9) == simple(5, 9)
    assert unpack_header(simple(5, 9))[:2] == (5, definitions.PING1D_DISTANCE_SIMPLE)
    with pytest.raises(ValueError, match='no field'):
        frame(definitions.PING1D_DISTANCE_SIMPLE, depth=5)


@pytest.mark.parametrize('kwargs, word', [
    ({'mode': 'stream'}, 'mode'), ({'message': 'altitude'}, 'message'),
    ({'min_confidence': 0}, 'min_confidence'), ({'rate': 0.0}, 'rate'),
    ({'min_range': 5.0, 'max_range': 2.0}, 'min_range'),
    ({'speed_of_sound': 340.0}, 'speed_of_sound')])
def test_bad_config_is_refused(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Ping1DConfig(**kwargs)


def test_udp_link_round_trip_with_a_fake_device():
    device = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    device.bind(('127.0.0.1', 0))
    device.settimeout(2.0)
    link = UdpLink('127.0.0.1', device.getsockname()[1])
    link.open()
    try:
        sonar = Ping1D()
        link.write(sonar.poll(0.0))
        request, address = device.recvfrom(1024)
        assert decode_all(request)[0].requested_id == definitions.PING1D_DISTANCE
        device.sendto(full(8000, 70), address)
        device.sendto(b'noise', ('127.0.0.1', address[1]))
        data = b''
        for _ in range(200):
            data += link.read()
            if len(data) >= len(full(8000, 70)) + 5:
                break
            time.sleep(0.005)
        out = sonar.feed(data, 1.0)
        assert [r.value for r in out.readings] == [8.0]
        assert out.rejected == {'garbage': 1}
    finally:
        link.close()
        device.close()
