// Words and formats of the screens: Bahasa Indonesia first, English on request; id-ID numbers,
// rupiah and times in the mall's own zone (WIB, WITA or WIT).

const WORDS = {
  id: {
    "lang.other": "English",
    "kiosk.title": "Ambil Nomor Antrean",
    "kiosk.pick_agency": "Pilih instansi",
    "kiosk.pick_service": "Pilih layanan",
    "kiosk.back": "Kembali",
    "kiosk.free": "Gratis",
    "kiosk.closed": "Tutup",
    "kiosk.open": "Buka",
    "kiosk.requirements": "Persyaratan",
    "kiosk.priority": "Prioritas (lansia, disabilitas, ibu hamil, anak-anak)",
    "kiosk.take": "Ambil nomor",
    "kiosk.your_number": "Nomor antrean Anda",
    "kiosk.scan": "Pindai untuk memantau antrean di ponsel Anda",
    "kiosk.print": "Cetak",
    "kiosk.done": "Selesai",
    "kiosk.none": "Belum ada layanan yang buka.",
    "kiosk.ahead": "{n} orang di depan Anda",
    "kiosk.all_closed": "Layanan sedang tutup. Silakan kembali pada jam layanan.",
    "priority.elderly": "Lansia",
    "priority.disability": "Penyandang disabilitas",
    "priority.pregnant": "Ibu hamil",
    "priority.nursing": "Ibu menyusui",
    "priority.children": "Anak-anak",
    "board.title": "Papan Antrean",
    "board.now": "Sedang dipanggil",
    "board.recent": "Panggilan terakhir",
    "board.counter": "Loket",
    "board.sound": "Aktifkan suara",
    "board.stale": "Menyambung ulang…",
    "board.idle": "—",
    "ticket.title": "Tiket Antrean",
    "ticket.status.waiting": "Menunggu",
    "ticket.status.called": "Dipanggil — silakan ke loket",
    "ticket.status.serving": "Sedang dilayani",
    "ticket.status.done": "Selesai",
    "ticket.status.no_show": "Tidak hadir",
    "ticket.status.cancelled": "Dibatalkan",
    "ticket.status.transferred": "Dialihkan",
    "ticket.position": "Posisi",
    "ticket.ahead": "Di depan Anda",
    "ticket.eta": "Perkiraan tunggu",
    "ticket.minutes": "{n} menit",
    "ticket.go_to": "Menuju {counter}",
    "ticket.unknown": "Tiket tidak ditemukan. Periksa tautan pada struk Anda.",
    "ticket.offline": "Koneksi terputus, mencoba lagi…",
    "ticket.transferred_to": "Lanjut ke tiket baru",
    "ticket.cancel": "Batalkan antrean",
    "ticket.cancel_sure": "Ya, batalkan nomor ini",
    "pay.title": "Pembayaran",
    "pay.scan": "Pindai QRIS dengan aplikasi bank atau dompet digital",
    "pay.amount": "Jumlah",
    "pay.status.pending": "Menunggu pembayaran",
    "pay.status.paid": "Lunas",
    "pay.status.expired": "Kedaluwarsa",
    "pay.status.failed": "Gagal",
    "pay.status.refunded": "Dikembalikan",
    "pay.status.partially_refunded": "Dikembalikan sebagian",
    "pay.status.cancelled": "Dibatalkan",
    "pay.expires": "Berlaku sampai {time}",
    "pay.receipt": "Bukti bayar",
    "rate.title": "Bagaimana pelayanan kami?",
    "rate.stars": "Nilai keseluruhan",
    "rate.survey": "Survei Kepuasan Masyarakat",
    "rate.comment": "Saran atau keluhan (opsional)",
    "rate.complaint": "Jadikan pengaduan (instansi wajib menanggapi)",
    "rate.send": "Kirim penilaian",
    "rate.thanks": "Terima kasih! Penilaian Anda membantu memperbaiki pelayanan.",
    "rate.used": "Penilaian untuk tiket ini sudah dikirim.",
    "rate.low": "Maaf atas pengalaman Anda. Ceritakan apa yang terjadi, kami teruskan sebagai pengaduan.",
    "counter.title": "Konsol Petugas",
    "counter.next": "Panggil berikutnya",
    "counter.recall": "Panggil ulang",
    "counter.start": "Mulai layani",
    "counter.complete": "Selesai",
    "counter.no_show": "Tidak hadir",
    "counter.transfer": "Alihkan ke layanan",
    "counter.call": "Panggil",
    "counter.current": "Sedang ditangani",
    "counter.none": "Tidak ada tiket di loket ini.",
    "counter.waiting": "Antrean ({n} menunggu)",
    "counter.empty": "Tidak ada yang menunggu.",
    "counter.called_for": "Dipanggil {n} kali · {m} menit",
    "counter.serving_for": "Dilayani {m} menit",
    "counter.sla": "Batas SLA {time}",
    "counter.late": "Melewati SLA",
    "counter.waited": "{m} menit",
    "counter.busy": "Selesaikan tiket yang sedang ditangani sebelum memanggil berikutnya.",
    "counter.min_recalls": "Tidak hadir dapat dicatat setelah {n} panggilan.",
    "counter.closed": "Loket ini tutup.",
    "counter.no_key": "Buka konsol dari alamat loket Anda: /counter?counter=…",
    "counter.keys": "Pintasan: N panggil berikutnya · R panggil ulang · S mulai · C selesai · X tidak hadir",
    "pair.title": "Pasangkan perangkat ini",
    "pair.label": "Kode pemasangan (8 angka dari admin instansi)",
    "pair.submit": "Pasangkan",
    "pair.wrong": "Kode salah, sudah dipakai, atau kedaluwarsa.",
    "book.title": "Booking Antrean",
    "book.pick_service": "Pilih layanan yang bisa dibooking",
    "book.pick_day": "Pilih tanggal",
    "book.pick_slot": "Pilih jam",
    "book.left": "{n} tempat",
    "book.full": "Penuh",
    "book.none": "Tidak ada jadwal pada tanggal ini.",
    "book.nik": "NIK (16 angka, sesuai KTP-el)",
    "book.nik_hint": "NIK tidak disimpan utuh dan tidak pernah ditampilkan utuh.",
    "book.phone": "Nomor HP (opsional)",
    "book.submit": "Booking sekarang",
    "book.done": "Booking berhasil",
    "book.reference": "Kode booking",
    "book.show_qr": "Tunjukkan QR ini di kiosk untuk check-in",
    "book.check_in": "Check-in dibuka {from} sampai {to}",
    "book.cancel": "Batalkan booking",
    "book.status.booked": "Terjadwal",
    "book.status.checked_in": "Sudah check-in",
    "book.status.late": "Terlambat",
    "book.status.cancelled": "Dibatalkan",
    "book.status.no_show": "Tidak hadir",
    "agency.title": "Dasbor Instansi",
    "agency.today": "Hari ini",
    "agency.tickets": "Tiket",
    "agency.served": "Dilayani",
    "agency.wait": "Median tunggu",
    "agency.serve": "Median layanan",
    "agency.breaches": "Lewat SLA",
    "agency.no_shows": "Tidak hadir",
    "agency.minutes": "{n} mnt",
    "agency.services": "Per layanan",
    "agency.service": "Layanan",
    "agency.ikm": "Indeks Kepuasan Masyarakat (bulan ini)",
    "agency.respondents": "{n} responden",
    "agency.not_representative": "Sampel belum representatif",
    "agency.complaints": "Pengaduan",
    "agency.no_complaints": "Tidak ada pengaduan.",
    "agency.due": "Tanggapi sebelum {time}",
    "agency.settlement": "Setoran hari ini",
    "agency.gross": "Bruto",
    "agency.refunds": "Pengembalian",
    "agency.net": "Neto",
    "agency.csv": "Unduh CSV",
    "agency.no_key": "Buka dasbor dari alamat instansi Anda: /agency?agency=…",
    "error.generic": "Terjadi kesalahan. Silakan coba lagi.",
  },
  en: {
    "lang.other": "Bahasa Indonesia",
    "kiosk.title": "Take a Queue Number",
    "kiosk.pick_agency": "Choose an agency",
    "kiosk.pick_service": "Choose a service",
    "kiosk.back": "Back",
    "kiosk.free": "Free",
    "kiosk.closed": "Closed",
    "kiosk.open": "Open",
    "kiosk.requirements": "Requirements",
    "kiosk.priority": "Priority (elderly, disability, pregnant, children)",
    "kiosk.take": "Take a number",
    "kiosk.your_number": "Your queue number",
    "kiosk.scan": "Scan to follow the queue on your phone",
    "kiosk.print": "Print",
    "kiosk.done": "Done",
    "kiosk.none": "No service is open yet.",
    "kiosk.ahead": "{n} people ahead of you",
    "kiosk.all_closed": "Services are closed. Please come back during opening hours.",
    "priority.elderly": "Elderly",
    "priority.disability": "Person with disability",
    "priority.pregnant": "Pregnant",
    "priority.nursing": "Nursing mother",
    "priority.children": "Child",
    "board.title": "Queue Board",
    "board.now": "Now calling",
    "board.recent": "Recent calls",
    "board.counter": "Counter",
    "board.sound": "Turn on sound",
    "board.stale": "Reconnecting…",
    "board.idle": "—",
    "ticket.title": "Queue Ticket",
    "ticket.status.waiting": "Waiting",
    "ticket.status.called": "Called — please go to the counter",
    "ticket.status.serving": "Being served",
    "ticket.status.done": "Done",
    "ticket.status.no_show": "Missed",
    "ticket.status.cancelled": "Cancelled",
    "ticket.status.transferred": "Transferred",
    "ticket.position": "Position",
    "ticket.ahead": "Ahead of you",
    "ticket.eta": "Estimated wait",
    "ticket.minutes": "{n} min",
    "ticket.go_to": "Go to {counter}",
    "ticket.unknown": "Ticket not found. Check the link on your slip.",
    "ticket.offline": "Connection lost, retrying…",
    "ticket.transferred_to": "Continue to your new ticket",
    "ticket.cancel": "Give up my place",
    "ticket.cancel_sure": "Yes, cancel this number",
    "pay.title": "Payment",
    "pay.scan": "Scan the QRIS with your bank or e-wallet app",
    "pay.amount": "Amount",
    "pay.status.pending": "Awaiting payment",
    "pay.status.paid": "Paid",
    "pay.status.expired": "Expired",
    "pay.status.failed": "Failed",
    "pay.status.refunded": "Refunded",
    "pay.status.partially_refunded": "Partly refunded",
    "pay.status.cancelled": "Cancelled",
    "pay.expires": "Valid until {time}",
    "pay.receipt": "Receipt",
    "rate.title": "How was our service?",
    "rate.stars": "Overall rating",
    "rate.survey": "Public Satisfaction Survey (SKM)",
    "rate.comment": "Suggestion or complaint (optional)",
    "rate.complaint": "File as a complaint (the agency must answer)",
    "rate.send": "Send rating",
    "rate.thanks": "Thank you! Your rating helps improve the service.",
    "rate.used": "This ticket has already been rated.",
    "rate.low": "We are sorry. Tell us what happened and we pass it on as a complaint.",
    "counter.title": "Officer Console",
    "counter.next": "Call next",
    "counter.recall": "Recall",
    "counter.start": "Start serving",
    "counter.complete": "Complete",
    "counter.no_show": "No-show",
    "counter.transfer": "Transfer to service",
    "counter.call": "Call",
    "counter.current": "At this counter",
    "counter.none": "No ticket at this counter.",
    "counter.waiting": "Line ({n} waiting)",
    "counter.empty": "Nobody is waiting.",
    "counter.called_for": "Called {n} times · {m} min",
    "counter.serving_for": "Serving for {m} min",
    "counter.sla": "SLA deadline {time}",
    "counter.late": "SLA breached",
    "counter.waited": "{m} min",
    "counter.busy": "Finish the ticket at this counter before calling the next one.",
    "counter.min_recalls": "No-show can be recorded after {n} calls.",
    "counter.closed": "This counter is closed.",
    "counter.no_key": "Open the console from your counter's address: /counter?counter=…",
    "counter.keys": "Shortcuts: N call next · R recall · S start · C complete · X no-show",
    "pair.title": "Pair this device",
    "pair.label": "Pairing code (8 digits from your agency admin)",
    "pair.submit": "Pair",
    "pair.wrong": "Wrong, used or expired code.",
    "book.title": "Book a Visit",
    "book.pick_service": "Choose a bookable service",
    "book.pick_day": "Choose a day",
    "book.pick_slot": "Choose a time",
    "book.left": "{n} places",
    "book.full": "Full",
    "book.none": "No slots on this day.",
    "book.nik": "NIK (16 digits, as on your e-KTP)",
    "book.nik_hint": "Your NIK is never stored whole and never shown whole.",
    "book.phone": "Mobile number (optional)",
    "book.submit": "Book now",
    "book.done": "Booked",
    "book.reference": "Booking code",
    "book.show_qr": "Show this QR at the kiosk to check in",
    "book.check_in": "Check-in opens {from} until {to}",
    "book.cancel": "Cancel booking",
    "book.status.booked": "Booked",
    "book.status.checked_in": "Checked in",
    "book.status.late": "Late",
    "book.status.cancelled": "Cancelled",
    "book.status.no_show": "No-show",
    "agency.title": "Agency Dashboard",
    "agency.today": "Today",
    "agency.tickets": "Tickets",
    "agency.served": "Served",
    "agency.wait": "Median wait",
    "agency.serve": "Median service",
    "agency.breaches": "SLA breaches",
    "agency.no_shows": "No-shows",
    "agency.minutes": "{n} min",
    "agency.services": "By service",
    "agency.service": "Service",
    "agency.ikm": "Public Satisfaction Index (this month)",
    "agency.respondents": "{n} respondents",
    "agency.not_representative": "Sample not yet representative",
    "agency.complaints": "Complaints",
    "agency.no_complaints": "No complaints.",
    "agency.due": "Answer before {time}",
    "agency.settlement": "Today's settlement",
    "agency.gross": "Gross",
    "agency.refunds": "Refunds",
    "agency.net": "Net",
    "agency.csv": "Download CSV",
    "agency.no_key": "Open the dashboard from your agency's address: /agency?agency=…",
    "error.generic": "Something went wrong. Please try again.",
  },
};

// -- issue 17, the agency's and the officer's parts (kiosk check-in, console, dashboard) --------
// A block of its own, merged into WORDS, so other screens' words can be added beside it.
const WORDS_AGENCY_OFFICER = {
  id: {
    "counter.open": "Buka loket",
    "counter.close": "Tutup loket",
    "counter.is_open": "Loket buka",
    "counter.is_closed": "Loket tutup",
    "counter.too_few_calls": "Panggil ulang dulu: tidak hadir dapat dicatat setelah {n} panggilan.",
    "counter.error.COUNTER_BUSY": "Loket masih menangani warga. Selesaikan, alihkan, atau catat tidak hadir sebelum menutup loket.",
    "counter.error.COUNTER_CLOSED": "Loket ini tutup. Buka loket untuk memanggil.",
    "counter.error.NO_TICKET_WAITING": "Tidak ada yang menunggu untuk layanan loket ini.",
    "checkin.entry": "Sudah booking? Check-in di sini",
    "checkin.title": "Check-in booking",
    "checkin.code": "Kode booking",
    "checkin.hint": "Ketik kode booking Anda, atau pindai QR dari halaman booking di ponsel Anda.",
    "checkin.submit": "Check-in",
    "checkin.scan": "Pindai QR dengan kamera",
    "checkin.camera": "Kamera pemindai QR",
    "checkin.no_camera": "Kamera tidak dapat dipakai. Silakan ketik kode booking Anda.",
    "checkin.unknown": "Kode booking tidak dikenal. Periksa kembali kode pada halaman booking Anda.",
    "checkin.too_early": "Terlalu awal. Check-in dibuka pukul {time}. Booking Anda tetap berlaku.",
    "checkin.not_booked": "Booking ini tidak dapat di-check-in lagi.",
    "checkin.state.checked_in": "Booking ini sudah di-check-in. Lihat nomor antrean yang sudah Anda terima.",
    "checkin.state.late": "Booking ini sudah di-check-in. Lihat nomor antrean yang sudah Anda terima.",
    "checkin.state.cancelled": "Booking ini sudah dibatalkan. Silakan ambil nomor antrean biasa.",
    "checkin.state.no_show": "Batas check-in booking ini sudah lewat. Silakan ambil nomor antrean biasa.",
    "checkin.on_time": "Check-in berhasil. Anda dipanggil mulai pukul {time}.",
    "checkin.late": "Anda datang setelah batas check-in, jadi booking tidak berlaku lagi. Nomor ini masuk antrean biasa.",
  },
  en: {
    "counter.open": "Open counter",
    "counter.close": "Close counter",
    "counter.is_open": "Counter open",
    "counter.is_closed": "Counter closed",
    "counter.too_few_calls": "Recall first: a no-show can be recorded after {n} calls.",
    "counter.error.COUNTER_BUSY": "The counter still holds a citizen. Complete, transfer or record a no-show before closing.",
    "counter.error.COUNTER_CLOSED": "This counter is closed. Open it to call.",
    "counter.error.NO_TICKET_WAITING": "Nobody is waiting for this counter's services.",
    "checkin.entry": "Booked already? Check in here",
    "checkin.title": "Booking check-in",
    "checkin.code": "Booking code",
    "checkin.hint": "Type your booking code, or scan the QR from the booking page on your phone.",
    "checkin.submit": "Check in",
    "checkin.scan": "Scan the QR with the camera",
    "checkin.camera": "QR scanner camera",
    "checkin.no_camera": "The camera cannot be used. Please type your booking code.",
    "checkin.unknown": "Unknown booking code. Check the code on your booking page.",
    "checkin.too_early": "Too early. Check-in opens at {time}. Your booking is kept.",
    "checkin.not_booked": "This booking cannot be checked in again.",
    "checkin.state.checked_in": "This booking is already checked in. Use the number you were given.",
    "checkin.state.late": "This booking is already checked in. Use the number you were given.",
    "checkin.state.cancelled": "This booking was cancelled. Please take a regular number.",
    "checkin.state.no_show": "This booking's check-in has closed. Please take a regular number.",
    "checkin.on_time": "Checked in. You will be called from {time}.",
    "checkin.late": "You arrived after the check-in window, so the booking has lapsed. This number joins the regular line.",
  },
};
Object.assign(WORDS.id, WORDS_AGENCY_OFFICER.id);
Object.assign(WORDS.en, WORDS_AGENCY_OFFICER.en);
// -- end of issue 17's block -------------------------------------------------------------------

// The nine elements of the Survei Kepuasan Masyarakat (PermenPANRB 14/2017), answered 1-4,
// in the questionnaire's own words. English glosses for the toggle.
export const SKM = [
  ["U1", "Bagaimana pendapat Saudara tentang kesesuaian persyaratan pelayanan dengan jenis pelayanannya?",
    "How well do the requirements fit the service?",
    ["Tidak sesuai", "Kurang sesuai", "Sesuai", "Sangat sesuai"]],
  ["U2", "Bagaimana pemahaman Saudara tentang kemudahan prosedur pelayanan di unit ini?",
    "How easy is the procedure?",
    ["Tidak mudah", "Kurang mudah", "Mudah", "Sangat mudah"]],
  ["U3", "Bagaimana pendapat Saudara tentang kecepatan waktu dalam memberikan pelayanan?",
    "How fast was the service?",
    ["Tidak cepat", "Kurang cepat", "Cepat", "Sangat cepat"]],
  ["U4", "Bagaimana pendapat Saudara tentang kewajaran biaya/tarif dalam pelayanan?",
    "How fair is the fee?",
    ["Sangat mahal", "Cukup mahal", "Murah", "Gratis"]],
  ["U5", "Bagaimana pendapat Saudara tentang kesesuaian produk pelayanan antara yang tercantum dalam standar pelayanan dengan hasil yang diberikan?",
    "Does the result match the published service standard?",
    ["Tidak sesuai", "Kurang sesuai", "Sesuai", "Sangat sesuai"]],
  ["U6", "Bagaimana pendapat Saudara tentang kompetensi/kemampuan petugas dalam pelayanan?",
    "How competent was the officer?",
    ["Tidak kompeten", "Kurang kompeten", "Kompeten", "Sangat kompeten"]],
  ["U7", "Bagaimana pendapat Saudara tentang perilaku petugas dalam pelayanan terkait kesopanan dan keramahan?",
    "How polite and friendly was the officer?",
    ["Tidak sopan dan ramah", "Kurang sopan dan ramah", "Sopan dan ramah", "Sangat sopan dan ramah"]],
  ["U8", "Bagaimana pendapat Saudara tentang penanganan pengaduan pengguna layanan?",
    "How are complaints handled?",
    ["Tidak ada", "Ada tetapi tidak berfungsi", "Berfungsi kurang maksimal", "Dikelola dengan baik"]],
  ["U9", "Bagaimana pendapat Saudara tentang kualitas sarana dan prasarana?",
    "How good are the facilities?",
    ["Buruk", "Cukup", "Baik", "Sangat baik"]],
];

let lang = localStorage.getItem("mpp.lang") || "id";
// the mall's zone and its name as citizens say it (WIB, WITA or WIT): GET /v1/mall's answer
let zone = "Asia/Jakarta";
let zoneName = "WIB";

export function language() {
  return lang;
}

export function toggleLanguage() {
  lang = lang === "id" ? "en" : "id";
  localStorage.setItem("mpp.lang", lang);
  document.documentElement.lang = lang;
  return lang;
}

export function setZone(mall) {
  zone = mall.timezone;
  zoneName = mall.zone;
}

export function t(key, values = {}) {
  const text = WORDS[lang][key] ?? WORDS.id[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => values[name] ?? "");
}

export function rupiah(amount) {
  return new Intl.NumberFormat("id-ID", {
    style: "currency",
    currency: "IDR",
    maximumFractionDigits: 0,
  }).format(amount);
}

export function clock(value, { seconds = false } = {}) {
  const date = value instanceof Date ? value : new Date(value);
  const text = new Intl.DateTimeFormat("id-ID", {
    timeZone: zone,
    hour: "2-digit",
    minute: "2-digit",
    second: seconds ? "2-digit" : undefined,
    hourCycle: "h23",
  }).format(date);
  return `${text} ${zoneName}`;
}

export function longDate(value) {
  const date = value instanceof Date ? value : new Date(value);
  return new Intl.DateTimeFormat(lang === "id" ? "id-ID" : "en-GB", {
    timeZone: zone,
    weekday: "long",
    day: "numeric",
    month: "long",
    year: "numeric",
  }).format(date);
}

// Fill every [data-t] element of the page with its words.
export function translatePage(root = document) {
  document.documentElement.lang = lang;
  for (const node of root.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
}

// Minutes since midnight now, in the mall's zone (for opening hours "08:00"-"12:00").
export function minutesNow(now = new Date()) {
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: zone,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(now);
  const part = (type) => Number(parts.find((p) => p.type === type).value);
  return part("hour") * 60 + part("minute");
}

export function isOpen(service, now = new Date()) {
  if (!service.active) return false;
  if (!service.opening_hours || service.opening_hours.length === 0) return true;
  const minute = minutesNow(now);
  const toMinutes = (hhmm) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
  return service.opening_hours.some((p) => minute >= toMinutes(p.opens) && minute < toMinutes(p.closes));
}

// A day of the mall as the API names it ("2026-12-06"), ``offset`` days from today.
export function mallDate(offset = 0, now = new Date()) {
  const at = new Date(now.getTime() + offset * 86_400_000);
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(at);
}

export function dayLabel(isoDate) {
  const [y, m, d] = isoDate.split("-").map(Number);
  return new Intl.DateTimeFormat(lang === "id" ? "id-ID" : "en-GB", {
    timeZone: "UTC",
    weekday: "short",
    day: "numeric",
    month: "short",
  }).format(new Date(Date.UTC(y, m - 1, d)));
}
