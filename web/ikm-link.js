// The public IKM page's QR, for the mall's shared screens (the board, which citizens cannot tap;
// the kiosk, which must not wander off to another page): a page that holds <aside id="ikm-qr">
// and loads this module shows it there. The words carry data-t, so a page's language toggle
// (translatePage) changes them too.

import { element as h } from "/web/api.js";
import { t } from "/web/i18n.js";
import { qrImage } from "/web/qr.js";

const holder = document.getElementById("ikm-qr");
if (holder) {
  const link = `${location.origin}/ikm`;
  holder.replaceChildren(
    qrImage(link, t("ikm.scan")),
    h("p", {}, h("span", { "data-t": "ikm.scan" }, t("ikm.scan")), h("br"), h("span", { class: "link" }, link)),
  );
}
