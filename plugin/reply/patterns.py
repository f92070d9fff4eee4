"""Line patterns that mail clients use to introduce quoted history and signatures."""
from __future__ import annotations

import re

# Header keys of the block Outlook, Apple Mail, Gmail forwards and webmails put above the
# original message, in the languages we see (Outlook localises them, Japanese with "：" too).
FROM_KEYS = (
    "From", "Von", "De", "De la", "Da", "Van", "Från", "Fra", "Frá", "Od", "От", "Від", "Lähettäjä", "Feladó",
    "Kimden", "Remetente", "Από", "Từ", "Dari", "Šalje", "Pošiljatelj", "Saatja", "Nuo", "Odosielateľ", "מאת",
    "من", "จาก", "差出人", "送信者", "发件人", "發件人", "寄件者", "보낸 사람", "보낸사람", "Nadawca",
)
# Keys that date the original; a From: block with one of these is a header, not prose.
DATE_KEYS = (
    "Sent", "Date", "Gesendet", "Datum", "Dato", "Envoyé", "Envoye", "Envoyé le", "Message du", "Enviado", "Fecha",
    "Enviada", "Enviado el", "Enviada em", "Enviat", "Inviato", "Data", "Verzonden", "Verstuurd", "Skickat",
    "Sendt", "Odesláno", "Odoslané", "Wysłano", "Отправлено", "Надіслано", "Дата", "Trimis", "Στάλθηκε",
    "Đã gửi", "Dikirim", "Poslano", "Saadetud", "Nosūtīts", "Išsiųsta", "נשלח", "تاريخ الإرسال", "ส่ง",
    "送信日時", "日時", "日付", "发送时间", "發送時間", "日期", "寄件日期", "보낸 날짜", "보낸날짜", "Lähetetty",
    "Gönderildi", "Tarih", "Elküldve",
)
OTHER_KEYS = (
    *DATE_KEYS,
    "To", "Subject", "Cc", "Bcc", "Reply-To", "Organization", "An", "Betreff", "Kopie", "À", "A",
    "Objet", "Para", "Asunto", "Assunto", "Oggetto", "Aan", "Onderwerp", "Till", "Ämne", "Til",
    "Emne", "Kopi", "Vedhæftet", "Komu", "Předmět", "Do", "Temat", "DW", "Кому", "Тема", "Копия", "宛先", "件名",
    "送信", "收件人", "主题", "主旨", "抄送", "副本", "收件者", "받는 사람", "받는사람", "제목", "참조",
    "Vastaanottaja", "Aihe", "Kime", "Konu", "Címzett", "Tárgy", "Sujet", "Către", "Subiect", "Προς", "Θέμα",
    "Đến", "Chủ đề", "Kepada", "Perihal", "Prima", "Predmet", "Zadeva", "Adressaat", "Teema", "Kam", "Tēma",
    "Tema", "Per a", "Assumpte", "Kopia", "UDW", "Másolat", "Bilgi", "אל", "נושא", "إلى", "الموضوع", "ถึง",
    "เรื่อง",
)


def _keys(keys: tuple[str, ...]) -> str:
    return "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))


# "From: x", "*From:* x" (bold in text parts made from HTML), "差出人： x".
# One optional run of spaces on each side of the bold marker, so a long run of spaces
# cannot be split between two "[ \t]*" in every possible way (quadratic backtracking).
def _key_line(keys: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"^[ \t]*[*_]{0,2}(?:" + _keys(keys) + r")[ \t]*(?:[*_]{1,2}[ \t]*)?[:：]", re.IGNORECASE)


FROM_LINE = _key_line(FROM_KEYS)
DATE_LINE = _key_line(DATE_KEYS)
HEADER_LINE = _key_line(FROM_KEYS + OTHER_KEYS)
# Some clients flatten the whole block onto one line: "From: a Sent: b To: c Subject: d".
INLINE_OTHER_KEY = re.compile(r"[ \t*](?:" + _keys(OTHER_KEYS) + r")[ \t]*[*_]{0,2}[:：]", re.IGNORECASE)

# "-----Original Message-----" and its translations (Outlook, Yahoo, AOL, Thunderbird).
ORIGINAL_MESSAGE = re.compile(
    r"^[ \t]*[-=_]{2,}[ \t]*(?:original message|reply message|ursprüngliche nachricht"
    r"|originalnachricht|antwort nachricht"
    r"|message d'origine|message original|mensaje original|mensagem original|messaggio originale"
    r"|oorspronkelijk bericht|originalmeddelande|oprindelig meddelelse|opprinnelig melding"
    r"|alkuperäinen viesti|původní zpráva|wiadomość oryginalna|исходное сообщение"
    r"|元のメッセージ|オリジナル メッセージ|オリジナルメッセージ|原始邮件|原始郵件|原邮件)"
    r"[ \t]*[-=_]{2,}[ \t]*$",
    re.IGNORECASE,
)
# What Gmail, Thunderbird, Apple Mail and Outlook put above a forwarded message: from here on
# the text is what the person chose to send, not history.
FORWARD_MARKER = re.compile(
    r"^[ \t]*(?:-{2,}[ \t]*(?:Forwarded message|Forwarded Message|Weitergeleitete Nachricht"
    r"|Message transféré|Mensaje reenviado|Messaggio inoltrato|Doorgestuurd bericht"
    r"|Mensagem encaminhada|Пересылаемое сообщение|転送メッセージ|転送されたメッセージ)"
    r"[ \t]*-{2,}|Begin forwarded message:|Anfang der weitergeleiteten Nachricht:"
    r"|Début du message réexpédié :|転送されたメッセージ:)[ \t]*$",
    re.IGNORECASE,
)
# A rule line Outlook draws above the header block ("_____", "-----").
RULE_LINE = re.compile(r"^[ \t]*(?:_{5,}|-{5,}|={5,})[ \t]*$")

# Only a ">" in the first column quotes (RFC 3676 section 4.5); an indented one is code or prose.
QUOTED_LINE = re.compile(r"^>")

# Attribution lines ("On <date>, <name> wrote:"), possibly wrapped over up to three lines.
ATTRIBUTION_END = re.compile(r"[:：][ \t]*$")
_VERB = (r"wrote|writes|schrieb|a écrit|a ecrit|escribió|escribio|ha scritto|escreveu|schreef|skrev"
         r"|napisał\(a\)|napisała|napisał|napsal\(a\)|написал\(а\)|написала|написал|kirjoitti|írta"
         r"|пишет|написав|pisze|yazdı|写道|寫道|のメール|さんは書きました|は書きました|が書きました"
         r"|님이 작성하였습니다|님이 작성했습니다|님이 작성|napsal|napsala|napísal\(a\)|napísal|napisal\(a\)|napisal"
         r"|napisala|napisao|nadesłał|έγραψε|написа|a scris|kirjutas|rašė|rakstīja|skrifaði|va escriure"
         r"|ha escrit|đã viết|menulis|כתב|كتب")
ATTRIBUTION_VERB = re.compile(r"(?:" + _VERB + r")[ \t]*[:：]$", re.IGNORECASE)
# The same line without its colon ("On ... Bob wrote"), as some clients and re-wrapping leave it.
BARE_ATTRIBUTION_VERB = re.compile(r"(?<!\w)(?:" + _VERB + r")[ \t]*$", re.IGNORECASE)
# Zoho Mail frames the attribution: "---- On Mon, 05 Jan 2026 ... Bob <bob@example.com> wrote ----".
# A space before each dash run, so that a long run is scanned once, not from each of its dashes.
FRAMED_LINE = re.compile(r"^[ \t]*+-{2,}+[ \t](?P<inner>[^-\n][^\n]*?)[ \t]-{2,}+[ \t]*+$")
# A clock time, which attribution lines carry and sentences rarely do: "09:00", "9.00", "9:00 AM".
HAS_TIME = re.compile(r"(?<!\d)\d{1,2}[:.]\d{2}(?!\d)")
# Thunderbird puts the date after the verb or the name after it: "Bob wrote on 05/01/2026 09:00:",
# "Max schrieb am 05.01.2026:", "Am 05.01.2026 um 09:00 schrieb Max Muster:".
ATTRIBUTION_VERB_INSIDE = re.compile(r"(?<!\w)(?:" + _VERB + r")(?!\w)[^\n]{1,120}[:：]$", re.IGNORECASE)
# Horde/IMP and other webmails: "Quoting Bob <bob@example.com>:", "Zitat von Max:".
QUOTING_LINE = re.compile(
    r"^[ \t]*(?:Quoting|Zitat von|Citando|Citation de|Cytuję|Cytat|Citeren) [^\n]{1,200}[:：]$",
    re.IGNORECASE)
# Some clients append the attribution to the reply's last line: "Thanks On Mon, ... Bob wrote:".
# Only tried on lines that end like ATTRIBUTION_VERB, so the tail needs no second scan.
INLINE_ATTRIBUTION = re.compile(
    r"^(?P<reply>[^\n]*?\S)[ \t]+(?P<attribution>(?:On|Le|Am|El|Il giorno|Em|Op|W dniu|Den) \S[^\n]*)$")
# Gmail in German or Japanese ends the line with the address: "... schrieb Max <max@x.de>:".
ATTRIBUTION_ADDRESS = re.compile(r"<[ \t]*[^<>\s]+@[^<>\s]+[ \t]*>\)?[ \t]*[:：]$")
ATTRIBUTION_START = re.compile(
    r"^[ \t]*(?:On|Am|Le|El|Il|Em|Op|Den|Dne|Dnia|W dniu|På|在|\d)(?:\s|\d|$)", re.IGNORECASE)
HAS_DATE = re.compile(r"\d")
HAS_ADDRESS = re.compile(r"@")

SIGNATURE_DELIMITER = re.compile(r"^--[ \t]*$")
# A short paragraph opening with "-Name", "---" or "___" at the end of the reply.
SIGNATURE_OPENER = re.compile(r"^(?:-\w[^\n]{0,40}|[ \t]*-{2,}[^\n]{0,40}|[ \t]*_{2,}[^\n]*|[ \t]*[—–][ \t]*)$")
# A rule that some apps draw above their mobile line (Mailbox: "—" then "Sent from Mailbox").
SEPARATOR_LINE = re.compile(r"^[ \t]*(?:-{1,}|_{2,}|[—–]+)[ \t]*$")

# Outlook apps link their name: "Sent from Mail<https://go.microsoft.com/...> for Windows";
# Sparrow adds its address in parentheses: "Sent with Sparrow (http://www.sparrowmailapp.com/?sig)".
# At most one space before the link: "[ \t]*" here would rescan every run of spaces (quadratic).
LINK = re.compile(r"[ \t]?(?:<https?://[^>\s]*>|\(https?://[^)\s]*\))")

# "Sent from my iPhone" and what other phones and apps append, whole line only, so that a
# sentence like "Sent from my desk, is much easier" stays.
_DEVICE_WORD = r"[\w.&'’()®™+-]+"
_APP = r"[\w .'’&-]{1,40}"
MOBILE_SIGNATURE = re.compile(
    r"^(?:Sent (?:wirelessly )?(?:from|via|with|using) (?:my )?{word}(?: {word}){0,7}"
    r"|Sent on the [\w .&-]{1,40} network with BlackBerry"
    # Carrier phones write a longer line: "Sent via the Samsung Galaxy S9, an AT&T 5G ... smartphone".
    r"|Sent (?:from|via) (?:my |the )?(?:Samsung|Galaxy|Verizon|Sprint|T-Mobile|AT&T|BlackBerry"
    r"|Huawei|Xiaomi|Motorola|LG|HTC|Sony|Nokia)[^\n]{0,80}"
    r"|Get Outlook for \w+|Outlook für \w+ herunterladen|Télécharger Outlook pour \w+"
    r"|Obtener Outlook para \w+|Obter o Outlook para \w+|Scarica Outlook per \w+|Outlook voor \w+ downloaden"
    r"|Hämta Outlook för \w+|Hent Outlook (?:for|til) \w+|Pobierz aplikację Outlook dla systemu \w+"
    r"|Получите Outlook для \w+|\w+ için Outlook'u edinin"
    r"|Von meinem {app} gesendet|Gesendet (?:von|vom|mit|über) {app}"
    r"|Envoyé (?:à partir )?(?:de|depuis|d'|avec) ?{app}"
    r"|Enviado (?:desde|do|de|a partir do|com|con) {app}|Enviat des de {app}"
    r"|Inviato da(?:l mio)? {app}|Verzonden (?:vanaf|met) {app}|Verstuurd (?:vanaf|met|van) {app}"
    r"|Skickat från {app}|Sendt fra {app}|Wysłano z {app}|Wysłane z {app}"
    r"|Lähetetty {app}|Odesláno z {app}|Odoslané z {app}|Poslano (?:s|z|iz) {app}|Trimis de pe {app}"
    r"|Отправлено (?:с|из|со) {app}|Надіслано з {app}|Στάλθηκε από {app}"
    r"|[\w'’ .-]{1,40}(?:dan|den|tan|ten) gönderildi|(?:Elküldve|Küldve) {app}|[\w'’ .-]{1,40}-?r[óő]l küldve"
    r"|[\w .-]{1,40}から送信|[\w .-]{1,40}에서 보냄"
    r"|[\w .-]{0,40}Outlook[\w .-]{0,20}(?:を入手|を取得|をダウンロード)"
    r"|(?:从我的|發自我的|发自我的)[\w .-]{1,30})"
    # K-9 Mail and others add an apology: "... with K-9 Mail. Please excuse my brevity."
    r"(?:[.!]? (?:Please excuse|Excuse|Sorry for)[^\n]{0,60})?"
    r"[.!]?$".replace("{app}", _APP).replace("{word}", _DEVICE_WORD),
    re.IGNORECASE,
)
