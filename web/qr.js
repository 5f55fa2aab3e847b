// A QR code of a link, as an accessible image (the kiosk's slip, the booking's check-in code).

import qrcode from "/web/vendor/qrcode-generator.mjs";
import { element } from "/web/api.js";

export function qrImage(text, label) {
  const code = qrcode(0, "M");
  code.addData(text);
  code.make();
  const holder = element("div", { class: "qr", role: "img", "aria-label": label });
  holder.innerHTML = code.createSvgTag({ cellSize: 4, margin: 2, scalable: true });
  return holder;
}
