"""Writes seed sessions for the `wire` fuzz target into the corpus directory given: a client's
handshake response (protocol 4.1, mysql_native_password) followed by commands, as a MySQL
client sends them, so the fuzzer starts past the handshake."""

import os
import struct
import sys


def packet(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def handshake(user=b"root", db=b"sr_hub", auth=bytes(range(1, 21))):
    caps = 0x0200 | 0x8000 | 0x00080000 | 0x00200000 | 0x0008  # 4.1, secure, plugin, lenenc, db
    body = struct.pack("<IIB", caps, 16 * 1024 * 1024, 0x21) + bytes(23)
    body += user + b"\0" + bytes([len(auth)]) + auth + db + b"\0" + b"mysql_native_password\0"
    return packet(1, body)


def command(code, arg=b""):
    return packet(0, bytes([code]) + arg)


sessions = {
    "query": [command(0x03, b"SELECT 1"), command(0x01)],
    "backup": [command(0x03, b"BACKUP DATABASE sr_hub SNAPSHOT s TO r"), command(0x03, b"SHOW BACKUP")],
    "init_ping": [command(0x02, b"sr_hub"), command(0x0E), command(0x03, b"USE sr_hub")],
    "prepare": [command(0x16, b"SELECT ?"), command(0x17, struct.pack("<IBI", 1, 0, 1)), command(0x19, struct.pack("<I", 1))],
    "field_list": [command(0x04, b"t\0")],
}
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, commands in sessions.items():
    with open(os.path.join(out, f"seed-{name}"), "wb") as f:
        f.write(handshake() + b"".join(commands))
