// A WebSocket whose every move a test makes, for `Client`'s `WebSocket` option: it opens
// when the test accepts, delivers what the test sends as the server, keeps what the
// client sends (decoded), and closes when either side says so.
//
// `scriptedSocket(codec, protocol)` makes the class for one codec: JSON text frames, or
// MessagePack delivered as a browser does (an ArrayBuffer). Each class lists the sockets
// made in `made` (a test resets it).

/**
 * @param {{encode(m: object): string | Uint8Array, decode(d: any): any}} codec
 * @param {string} protocol what `accept()` picks when the test names none
 */
export function scriptedSocket(codec, protocol) {
  return class ScriptedSocket {
    /** @type {ScriptedSocket[]} */
    static made = [];

    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.readyState = 0;
      this.protocol = "";
      this.bufferedAmount = 0;
      this.binaryType = "blob";
      this.sent = [];
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      ScriptedSocket.made.push(this);
    }

    send(data) {
      this.sent.push(codec.decode(data));
    }

    close(code = 1005, reason = "") {
      this.drop(code, reason);
    }

    accept(picked = protocol) {
      this.readyState = 1;
      this.protocol = picked;
      this.onopen?.({});
    }

    /** The server sends `msg`. */
    deliver(msg) {
      const d = codec.encode(msg);
      if (typeof d === "string") this.onmessage?.({ data: d });
      else this.bytes(d);
    }

    /** The server sends these bytes (a binary frame). */
    bytes(b) {
      this.onmessage?.({ data: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) });
    }

    drop(code, reason = "") {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
  };
}
