// The live socket: reconnects with backoff; a 4401 close means the session is over.
import { toLogin } from "./api.js";

const CLOSE_UNAUTHENTICATED = 4401;
const CLOSE_FORBIDDEN = 4403;

export function connectLive({ onFrame, onStatus }) {
  let socket = null;
  let delay = 500;
  let stopped = false;
  let watched = [];

  function open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/inbox/live`);
    onStatus("connecting");
    socket.addEventListener("open", () => {
      delay = 500;
    });
    socket.addEventListener("message", (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch (_) {
        return;
      }
      if (frame.type === "hello") {
        onStatus("online");
        send({ type: "watch", ids: watched });
      }
      onFrame(frame);
    });
    socket.addEventListener("close", (event) => {
      if (stopped) return;
      if (event.code === CLOSE_UNAUTHENTICATED) {
        toLogin(true);
        return;
      }
      onStatus("offline");
      if (event.code === CLOSE_FORBIDDEN) return;
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    });
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  open();
  return {
    /** Tell the server which conversations this page shows (it then hears when one leaves our sight). */
    watch(ids) {
      watched = ids.slice(0, 1000);
      send({ type: "watch", ids: watched });
    },
    close() {
      stopped = true;
      if (socket) socket.close();
    },
  };
}
