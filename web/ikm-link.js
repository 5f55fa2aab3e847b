// The public IKM page's QR, for screens citizens look at but cannot tap (the board): a page that
// holds <aside id="ikm-qr"> and loads this module shows it there.

import { element as h } from "/web/api.js";
import { t } from "/web/i18n.js";
import { qrImage } from "/web/qr.js";

const holder = document.getElementById("ikm-qr");
if (holder) {
  const link = `${location.origin}/ikm`;
  holder.replaceChildren(
    qrImage(link, t("ikm.scan")),
    h("p", {}, t("ikm.scan"), h("br"), h("span", { class: "link" }, link)),
  );
}
