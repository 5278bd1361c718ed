#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/corpus/{http,ws,jwt,ws_frames}/ (small real requests, frames,
tokens, client WebSocket frames on the wire).
Crash regressions kept in those directories (regress-*) are not touched. The JWT seeds are
signed with fuzz_check.h's kKey at fuzz_jwt.cpp's kNow."""
import base64, hashlib, hmac, json, os

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def req(method, path, body=None, token='$TOKEN_A', extra='', close=False):
    h = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
    if token:
        h += f"Authorization: Bearer {token}\r\n"
    if body is not None:
        h += f"Content-Type: application/json\r\nContent-Length: {len(body.encode())}\r\n"
    h += extra
    if close:
        h += "Connection: close\r\n"
    return h + "\r\n" + (body or "")


http = {
    'healthz': req('GET', '/healthz', token=None),
    'readyz-metrics': req('GET', '/readyz', token=None) + req('GET', '/metrics', token=None, close=True),
    'register': req('POST', '/api/auth/register', '{"username":"dave","password":"password123"}', token=None),
    'register-bad': req('POST', '/api/auth/register', '{"username":"A!","password":1}', token=None),
    'login-unknown': req('POST', '/api/auth/login', '{"username":"nobody","password":"password123"}', token=None),
    'me': req('GET', '/api/me'),
    'me-bad-token': req('GET', '/api/me', token='abc.def.ghi'),
    'users': req('GET', '/api/users?query=a&limit=5'),
    'create-room': req('POST', '/api/chatrooms', '{"name":"team","member_ids":["2","3"]}'),
    'create-direct': req('POST', '/api/chatrooms', '{"type":"direct","member_ids":["2"]}'),
    'list-rooms': req('GET', '/api/chatrooms'),
    'get-room': req('GET', '/api/chatrooms/1'),
    'get-room-forbidden': req('GET', '/api/chatrooms/2'),
    'add-member': req('POST', '/api/chatrooms/1/members', '{"user_id":"3"}'),
    'remove-member': req('DELETE', '/api/chatrooms/1/members/2'),
    'send': req('POST', '/api/chatrooms/1/messages', '{"content":"hello","client_msg_id":"c-1"}'),
    'send-then-history': req('POST', '/api/chatrooms/1/messages', '{"content":"one"}')
    + req('POST', '/api/chatrooms/1/messages', '{"content":"two"}', token='$TOKEN_B')
    + req('GET', '/api/chatrooms/1/messages?after_seq=0&limit=1'),
    'history': req('GET', '/api/chatrooms/1/messages?before_seq=10&after_seq=1&limit=200'),
    'unread': req('POST', '/api/chatrooms/1/messages', '{"content":"x"}', token='$TOKEN_B')
    + req('GET', '/api/messages/unread-counts') + req('GET', '/api/messages/latest'),
    'read': req('POST', '/api/chatrooms/1/messages', '{"content":"x"}', token='$TOKEN_B')
    + req('POST', '/api/messages/1/read', '{}') + req('POST', '/api/messages/read', '{"message_ids":["1"]}')
    + req('GET', '/api/messages/1/read-by-who', token='$TOKEN_B'),
    'mark-all-read': req('POST', '/api/chatrooms/1/mark-all-read', '{}') + req('GET', '/api/chatrooms/1/first-unread'),
    'get-message': req('GET', '/api/messages/1'),
    'chunked': "POST /api/chatrooms/1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $TOKEN_A\r\n"
    "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"con\r\n10\r\ntent\":\"chunked\"}\r\n0\r\n\r\n",
    'smuggle-te-identity': "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
    + req('POST', '/api/chatrooms/1/messages', '{"content":"SMUGGLED"}'),
    'smuggle-te-cl': "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\nabc",
    'smuggle-cl-cl': "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 3\r\n\r\nabc",
    'obs-fold': "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    'upgrade': "GET /ws?token=$TOKEN_A HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    'percent': req('GET', '/api/messages/%ff') + req('GET', '/api/chatrooms/%ed%a0%80/messages?limit=-1'),
    'http10': "GET /healthz HTTP/1.0\r\n\r\n",
}


def upgrade(target, extra=''):
    return (f"GET {target} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n")


http['upgrade-chatroom'] = upgrade('/api/ws?token=$TOKEN_A&room_id=1&after_seq=0')
http['upgrade-origin'] = upgrade('/ws', 'Authorization: Bearer $TOKEN_B\r\nOrigin: http://evil.example\r\n')
http['upgrade-forbidden'] = upgrade('/api/ws?token=$TOKEN_A&room_id=2')
for k, v in http.items():
    write('http', k, v)


def frames(mode, *fs):
    return bytes([mode]) + b'\0'.join(f.encode() for f in fs)


ws = {
    'ping': frames(0, '{"type":"ping","data":{"timestamp":12.5}}', '{"type":"heartbeat"}',
                   '{"type":"heartbeat","data":{"timestamp":1e400}}'),
    'send-sidebar': frames(0, '{"type":"send_message","data":{"room_id":"1","content":"hi","client_msg_id":"a1"}}'),
    'send-chatroom': frames(1, '{"type":"send_message","data":{"content":"hi","client_msg_id":"a1"}}',
                            '{"type":"send_message","data":{"content":"hi","client_msg_id":"a1"}}'),
    'send-bob': frames(2, '{"type":"send_message","data":{"content":"yo","client_msg_id":"b"}}',
                       '{"type":"send_message","data":{"room_id":"2","content":"x","client_msg_id":"c"}}'),
    'send-other-room': frames(0, '{"type":"send_message","data":{"room_id":"2","content":"x","client_msg_id":"z"}}'),
    'bad': frames(0, 'not json', '[1]', '{"type":3}', '{"type":"ping","data":7}',
                  '{"type":"nope","data":{"client_msg_id":"q"}}',
                  '{"type":"send_message","data":{"content":"   ","client_msg_id":""}}'),
    'limited': frames(0x80, '{"type":"send_message","data":{"content":"x","client_msg_id":"l"}}'),
    'delivered': frames(0, '{"type":"send_message","data":{"room_id":"1","content":"hi","client_msg_id":"d1"}}',
                        '{"type":"delivered","data":{"room_id":"1","up_to_seq":1}}',
                        '{"type":"delivered","data":{"room_id":"1","up_to_seq":18446744073709551615}}',
                        '{"type":"delivered","data":{"room_id":"2","up_to_seq":-1}}',
                        '{"type":"delivered","data":{"room_id":"2","up_to_seq":1}}'),
    'delivered-chatroom': frames(2, '{"type":"delivered","data":{"up_to_seq":0}}',
                                 '{"type":"delivered","data":{"room_id":"2","up_to_seq":1.5}}'),
    'typing-sidebar': frames(0, '{"type":"typing","data":{"room_id":"1","state":"start"}}',
                             '{"type":"typing","data":{"room_id":"2","state":"stop"}}',
                             '{"type":"typing","data":{"room_id":"1","state":"typing"}}',
                             '{"type":"typing","data":{"state":"start"}}'),
    'typing-chatroom': frames(1, '{"type":"typing","data":{"state":"start"}}',
                              '{"type":"typing","data":{"room_id":"2","state":"stop"}}'),
}
for k, v in ws.items():
    write('ws', k, v)

KEY = b"fuzz-key-fuzz-key-fuzz-key-fuzz-key"
T = 1780000000  # fuzz_jwt.cpp's kNow / 1000
DB = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0"  # fuzz_check.h's kDatabaseId


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b'=').decode()


def tok(header, payload, key=KEY, alg=hashlib.sha256):
    h = b64(json.dumps(header, separators=(',', ':')).encode())
    p = b64(json.dumps(payload, separators=(',', ':')).encode())
    s = b64(hmac.new(key, f"{h}.{p}".encode(), alg).digest()) if key is not None else ''
    return f"{h}.{p}.{s}"


ok = {"sub": "1", "iss": "parley", "iat": T, "exp": T + 3600, "db": DB, "ver": 0}
jwt = {
    'valid': tok({"alg": "HS256", "typ": "JWT"}, ok),
    'expired': tok({"alg": "HS256", "typ": "JWT"}, {**ok, "exp": T - 1}),
    'future-iat': tok({"alg": "HS256", "typ": "JWT"}, {**ok, "iat": T + 3600, "exp": T + 7200}),
    'wrong-key': tok({"alg": "HS256", "typ": "JWT"}, ok, key=b"x" * 32),
    'alg-none': tok({"alg": "none"}, ok, key=None),
    'hs512': tok({"alg": "HS512", "typ": "JWT"}, ok, alg=hashlib.sha512),
    'rs256': tok({"alg": "RS256", "typ": "JWT"}, ok),
    'no-iss': tok({"alg": "HS256"}, {k: v for k, v in ok.items() if k != "iss"}),
    'sub-bad': tok({"alg": "HS256"}, {**ok, "sub": "-1"}),
    'sub-int': tok({"alg": "HS256"}, {**ok, "sub": 1}),
    'exp-string': tok({"alg": "HS256"}, {**ok, "exp": "soon"}),
    'other-db': tok({"alg": "HS256"}, {**ok, "db": "0" * 32}),
    'no-db': tok({"alg": "HS256"}, {k: v for k, v in ok.items() if k != "db"}),
    'no-ver': tok({"alg": "HS256"}, {k: v for k, v in ok.items() if k != "ver"}),
    'ver-string': tok({"alg": "HS256"}, {**ok, "ver": "0"}),
    'ver-3': tok({"alg": "HS256"}, {**ok, "ver": 3}),
    'garbage': "eyJ.eyJ.",
}
for k, v in jwt.items():
    write('jwt', k, v)


# fuzz_ws_frames: byte 0 picks the piece size (bits 0-5: 1 + value) and release() after each
# piece (bit 6); the rest is what a client sends on the wire after the upgrade (RFC 6455 frames).
def cframe(op, payload=b'', fin=True, rsv=0, mask=b'\x37\xfa\x21\x3d', masked=True, form=None):
    n = len(payload)
    form = form or (7 if n < 126 else 16 if n <= 0xffff else 64)
    h = bytes([(0x80 if fin else 0) | (rsv << 4) | op])
    m = 0x80 if masked else 0
    if form == 7:
        h += bytes([m | n])
    elif form == 16:
        h += bytes([m | 126]) + n.to_bytes(2, 'big')
    else:
        h += bytes([m | 127]) + n.to_bytes(8, 'big')
    if not masked:
        return h + payload
    return h + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close(code, reason=b''):
    return cframe(8, code.to_bytes(2, 'big') + reason)


TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
ws_frames = {
    'text': bytes([0]) + cframe(TEXT, b'Hello'),
    'all-kinds': bytes([63]) + cframe(TEXT, b'{"type":"ping"}') + cframe(BINARY, bytes(range(256)))
    + cframe(PING, b'p') + cframe(PONG) + cframe(TEXT) + close(1000, b'bye'),
    'fragmented': bytes([6 | 64]) + cframe(TEXT, b'Hel', fin=False) + cframe(PING, b'are you there?')
    + cframe(CONT, b'lo, ', fin=False, mask=b'\xa5\x01\xfe\x5c') + cframe(PONG, b'x') + cframe(CONT, b'world')
    + cframe(BINARY, b'\x00\xff', fin=False) + cframe(CONT),
    'utf8-split': bytes([2]) + cframe(TEXT, '\u20ac\U0001F600'.encode()[:2], fin=False)
    + cframe(CONT, '\u20ac\U0001F600'.encode()[2:5], fin=False) + cframe(CONT, '\u20ac\U0001F600'.encode()[5:]),
    'utf8-overlong-split': bytes([1]) + cframe(TEXT, b'\xc0', fin=False) + cframe(CONT, b'\xaf'),
    'len16-max': bytes([40 | 64]) + cframe(BINARY, b'b' * 4000, fin=False) + cframe(CONT, b'c' * 96),
    'too-big': bytes([63]) + cframe(TEXT, b'a' * 4000, fin=False) + cframe(CONT, b'b' * 97),
    'len64-header': bytes([3]) + cframe(BINARY, b'x' * 65536)[:14],
    'non-minimal': bytes([5]) + cframe(TEXT, b'ok') + cframe(TEXT, b'abc', form=16),
    'close-empty': bytes([0]) + cframe(CLOSE),
    'close-1-byte': bytes([0]) + cframe(CLOSE, b'\x03'),
    'close-1005': bytes([9]) + close(1005),
    'close-bad-reason': bytes([9]) + close(1000, b'\xff'),
    'unmasked': bytes([4]) + cframe(TEXT, b'plain', masked=False),
    'rsv1': bytes([4]) + cframe(TEXT, b'deflated?', rsv=4),
    'opcode-11': bytes([4]) + cframe(11, b'?'),
    'ping-fragmented': bytes([4]) + cframe(PING, b'p', fin=False),
    'ping-126': bytes([10]) + cframe(PING, b'p' * 126),
    'lone-continuation': bytes([0]) + cframe(CONT, b'x'),
    'text-in-text': bytes([0]) + cframe(TEXT, b'a', fin=False) + cframe(TEXT, b'b'),
    'empty-at-end': bytes([12]) + cframe(TEXT, b'a') + cframe(TEXT),
}
for k, v in ws_frames.items():
    write('ws_frames', k, v)
