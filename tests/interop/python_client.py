"""Interoperability check with a client we did not write: Python's `websockets` (and
`msgpack` for the binary subprotocol) against a running Rallypoint server.

Usage: python3 python_client.py ws://127.0.0.1:PORT/play TOKEN_A TOKEN_B TOKEN_C
Prints "ok" and exits 0 when every check passes; raises otherwise.
"""

import asyncio
import json
import sys

import msgpack
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

MSGPACK = "rallypoint.v1.msgpack"
JSON = "rallypoint.v1.json"


def encode(protocol, message):
    if protocol == MSGPACK:
        return msgpack.packb(message)
    return json.dumps(message)


def decode(protocol, frame):
    if protocol == MSGPACK:
        assert isinstance(frame, bytes), "msgpack messages arrive in binary frames"
        return msgpack.unpackb(frame)
    assert isinstance(frame, str), "json messages arrive in text frames"
    return json.loads(frame)


async def recv_until(ws, protocol, predicate, seconds=5.0):
    async def loop():
        while True:
            message = decode(protocol, await ws.recv())
            if predicate(message):
                return message

    return await asyncio.wait_for(loop(), seconds)


async def play(url, token, protocol, carriage):
    kwargs = {"subprotocols": [protocol]}
    if carriage == "header":
        kwargs["additional_headers"] = {"Authorization": "Bearer " + token}
    elif carriage == "subprotocol":
        kwargs["subprotocols"] = ["bearer." + token, protocol]
    else:
        url = url + "?access_token=" + token
    async with connect(url, **kwargs) as ws:
        assert ws.subprotocol == protocol, ws.subprotocol
        welcome = decode(protocol, await ws.recv())
        assert welcome["t"] == "welcome", welcome
        you, rate = welcome["you"], welcome["tick_rate"]
        await ws.send(encode(protocol, {"t": "ping", "id": 41}))
        pong = await recv_until(ws, protocol, lambda m: m["t"] == "pong")
        assert pong["id"] == 41, pong
        # JavaScript-style numbers: whole numbers as integers, others as floats.
        for seq in range(1, 11):
            await ws.send(encode(protocol, {"t": "input", "seq": seq, "mx": 1, "my": 0.5, "aim": 0, "fire": False}))
            await asyncio.sleep(1 / rate)
        snap = await recv_until(ws, protocol, lambda m: m["t"] == "snap" and m["ack"] == 10)
        rows = [row for row in snap["ents"] if row[0] == you and row[1] == 0]
        assert len(rows) == 1, snap
        await ws.close()
        assert ws.close_code == 1000, ws.close_code


async def rejected(url, token):
    try:
        async with connect(url, subprotocols=["rallypoint.v0.xml"], additional_headers={"Authorization": "Bearer " + token}):
            raise AssertionError("an unsupported subprotocol was accepted")
    except InvalidStatus as e:
        assert e.response.status_code == 400, e.response.status_code
        body = json.loads(e.response.body)
        assert body["error"] == "unsupported_subprotocol", body
        assert body["supported"] == [MSGPACK, JSON, "rallypoint.v2.msgpack"], body
    try:
        async with connect(url, subprotocols=[JSON]):
            raise AssertionError("a connection without a token was accepted")
    except InvalidStatus as e:
        assert e.response.status_code == 401, e.response.status_code
        assert "invalid_token" in e.response.headers["WWW-Authenticate"]


async def wrong_frame_type(url, token):
    async with connect(url, subprotocols=[MSGPACK], additional_headers={"Authorization": "Bearer " + token}) as ws:
        await ws.recv()
        await ws.send('{"t":"ping","id":1}')
        error = None
        try:
            while True:
                message = decode(MSGPACK, await asyncio.wait_for(ws.recv(), 5))
                if message["t"] == "error":
                    error = message["code"]
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1003, closed
        assert error == "wrong_frame_type", error


async def main(url, tokens):
    await play(url, tokens[0], MSGPACK, "header")
    await play(url, tokens[1], JSON, "subprotocol")
    await play(url, tokens[2], MSGPACK, "query")
    await rejected(url, tokens[0])
    await wrong_frame_type(url, tokens[1])
    print("ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:5]))
