"""Line patterns that mail clients use to introduce quoted history and signatures."""
from __future__ import annotations

import re

# Header keys of the block Outlook, Apple Mail, Gmail forwards and webmails put above the
# original message, in the languages we see (Outlook localises them, Japanese with "：" too).
FROM_KEYS = (
    "From", "Von", "De", "Da", "Van", "Från", "Fra", "Od", "От", "Lähettäjä", "Feladó", "Kimden",
    "Remetente", "差出人", "送信者", "发件人", "發件人", "寄件者", "보낸 사람", "보낸사람",
)
OTHER_KEYS = (
    "Sent", "Date", "To", "Subject", "Cc", "Bcc", "Reply-To", "Organization",
    "Gesendet", "Datum", "An", "Betreff", "Kopie", "Envoyé", "Envoye", "À", "A", "Objet",
    "Enviado", "Fecha", "Para", "Asunto", "Enviada", "Assunto", "Inviato", "Data", "Oggetto",
    "Verzonden", "Aan", "Onderwerp", "Skickat", "Till", "Ämne", "Sendt", "Til", "Emne",
    "Odesláno", "Komu", "Předmět", "Wysłano", "Do", "Temat", "DW",
    "Отправлено", "Кому", "Тема", "Дата", "Копия",
    "送信日時", "日時", "日付", "宛先", "件名", "送信", "发送时间", "發送時間", "收件人", "主题",
    "主旨", "抄送", "副本", "日期", "寄件日期", "收件者", "보낸 날짜", "받는 사람", "제목", "참조",
)


def _keys(keys: tuple[str, ...]) -> str:
    return "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))


# "From: x", "*From:* x" (bold in text parts made from HTML), "差出人： x".
_KEY_LINE = r"^[ \t]*[*_]{0,2}(?:%s)[ \t]*[*_]{0,2}[ \t]*[:：]"
FROM_LINE = re.compile(_KEY_LINE % _keys(FROM_KEYS), re.IGNORECASE)
HEADER_LINE = re.compile(_KEY_LINE % _keys(FROM_KEYS + OTHER_KEYS), re.IGNORECASE)
# Some clients flatten the whole block onto one line: "From: a Sent: b To: c Subject: d".
INLINE_OTHER_KEY = re.compile(r"[ \t*](?:%s)[ \t]*[*_]{0,2}[:：]" % _keys(OTHER_KEYS), re.IGNORECASE)

# "-----Original Message-----" and its translations (Outlook, Yahoo, AOL, Thunderbird).
ORIGINAL_MESSAGE = re.compile(
    r"^[ \t]*[-=_]{2,}[ \t]*(?:original message|ursprüngliche nachricht|originalnachricht"
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
    r"|Message transféré|Mensaje reenviado|Messaggio inoltrato|転送メッセージ|転送されたメッセージ)"
    r"[ \t]*-{2,}|Begin forwarded message:|Anfang der weitergeleiteten Nachricht:"
    r"|Début du message réexpédié :|転送されたメッセージ:)[ \t]*$",
    re.IGNORECASE,
)
# A rule line Outlook draws above the header block ("_____", "-----").
RULE_LINE = re.compile(r"^[ \t]*(?:_{5,}|-{5,}|={5,})[ \t]*$")

QUOTED_LINE = re.compile(r"^[ \t]*>")

# Attribution lines ("On <date>, <name> wrote:"), possibly wrapped over up to three lines.
ATTRIBUTION_END = re.compile(r"[:：][ \t]*$")
_VERB = (r"wrote|writes|schrieb|a écrit|a ecrit|escribió|escribio|ha scritto|escreveu|schreef|skrev"
         r"|napisał\(a\)|napisała|napisał|napsal\(a\)|написал\(а\)|написала|написал|kirjoitti|írta"
         r"|yazdı|写道|寫道|のメール|さんは書きました|は書きました|が書きました|님이 작성")
ATTRIBUTION_VERB = re.compile(r"(?:%s)[ \t]*[:：]$" % _VERB, re.IGNORECASE)
# Gmail in German or Japanese ends the line with the address: "... schrieb Max <max@x.de>:".
ATTRIBUTION_ADDRESS = re.compile(r"<[ \t]*[^<>\s]+@[^<>\s]+[ \t]*>\)?[ \t]*[:：]$")
ATTRIBUTION_START = re.compile(
    r"^[ \t]*(?:On|Am|Le|El|Il|Em|Op|Den|Dne|Dnia|W dniu|På|在|\d)(?:\s|\d|$)", re.IGNORECASE)
HAS_DATE_OR_ADDRESS = re.compile(r"\d|@")

SIGNATURE_DELIMITER = re.compile(r"^--[ \t]*$")
# A short paragraph opening with "-Name", "---" or "___" at the end of the reply.
SIGNATURE_OPENER = re.compile(r"^(?:-\w[^\n]{0,40}|[ \t]*-{2,}[^\n]{0,40}|[ \t]*_{2,}[^\n]*)$")

# Outlook apps link their name: "Sent from Mail<https://go.microsoft.com/...> for Windows".
LINK = re.compile(r"[ \t]*<https?://[^>\s]*>")

# "Sent from my iPhone" and what other phones and apps append, whole line only, so that a
# sentence like "Sent from my desk, is much easier" stays.
MOBILE_SIGNATURE = re.compile(
    r"^(?:(?:Sent from|Sent via|Sent with|Sent using) (?:my )?[\w.&'’()-]+(?: [\w.&'’()-]+){0,5}"
    r"|Get Outlook for \w+"
    r"|Von meinem [\w .-]{1,40} gesendet|Gesendet von [\w .-]{1,40}"
    r"|Envoyé (?:de|depuis) (?:mon|ma) [\w .-]{1,40}"
    r"|Enviado (?:desde|do|de) (?:mi|meu|o meu|my) [\w .-]{1,40}"
    r"|Inviato da [\w .-]{1,40}|Verzonden (?:vanaf|met) [\w .-]{1,40}"
    r"|Skickat från [\w .-]{1,40}|Sendt fra [\w .-]{1,40}|Wysłano z [\w .-]{1,40}"
    r"|[\w .-]{1,40}から送信|Outlook for \w+ (?:を入手|を取得|をダウンロード)"
    r"|(?:从我的|發自我的|发自我的)[\w .-]{1,30})"
    r"[.!]?$",
    re.IGNORECASE,
)
