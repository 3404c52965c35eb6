// Keyboard and mouse → the next `input` message's fields.
//
// Keys are read by `code` (the physical key), so WASD sits in the same place on every
// keyboard layout; arrows work too. Everything is released when the page loses focus,
// or a key let go in another window would keep the player running.

const MOVES = {
  KeyW: [0, -1],
  ArrowUp: [0, -1],
  KeyS: [0, 1],
  ArrowDown: [0, 1],
  KeyA: [-1, 0],
  ArrowLeft: [-1, 0],
  KeyD: [1, 0],
  ArrowRight: [1, 0],
};
const FIRE_KEYS = new Set(["Space"]);

export class Controls {
  /** @param {HTMLCanvasElement} canvas where the mouse aims and fires */
  constructor(canvas) {
    this.held = new Set();
    this.mouseDown = false;
    /** Mouse position in canvas CSS pixels, or null before the mouse moved. */
    this.mouse = null;
    this.aim = 0;
    addEventListener("keydown", (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.code in MOVES || FIRE_KEYS.has(e.code)) {
        this.held.add(e.code);
        e.preventDefault(); // arrows and space would scroll
      }
    });
    addEventListener("keyup", (e) => this.held.delete(e.code));
    addEventListener("blur", () => this.releaseAll());
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) this.releaseAll();
    });
    canvas.addEventListener("pointermove", (e) => {
      const r = canvas.getBoundingClientRect();
      this.mouse = { x: e.clientX - r.left, y: e.clientY - r.top };
    });
    canvas.addEventListener("pointerdown", (e) => {
      if (e.button === 0) {
        const r = canvas.getBoundingClientRect();
        this.mouse = { x: e.clientX - r.left, y: e.clientY - r.top };
        this.mouseDown = true;
      }
    });
    addEventListener("pointerup", (e) => {
      if (e.button === 0) this.mouseDown = false;
    });
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  }

  releaseAll() {
    this.held.clear();
    this.mouseDown = false;
  }

  /**
   * The move vector (length at most 1), the aim and the trigger.
   * @param {{x: number, y: number}|null} self the player's position in world units
   * @param {(p: {x: number, y: number}) => {x: number, y: number}|null} toWorld canvas → world
   */
  sample(self, toWorld) {
    let mx = 0;
    let my = 0;
    for (const code of this.held) {
      const m = MOVES[code];
      if (m) {
        mx += m[0];
        my += m[1];
      }
    }
    mx = Math.sign(mx);
    my = Math.sign(my);
    if (mx !== 0 && my !== 0) {
      mx *= Math.SQRT1_2;
      my *= Math.SQRT1_2;
    }
    if (self && this.mouse) {
      const target = toWorld(this.mouse);
      if (target && (target.x !== self.x || target.y !== self.y)) {
        this.aim = Math.atan2(target.y - self.y, target.x - self.x);
      }
    }
    const fire = this.mouseDown || [...FIRE_KEYS].some((k) => this.held.has(k));
    return { mx, my, aim: this.aim, fire };
  }
}
