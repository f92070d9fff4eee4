"""A stateful Exchange mailbox that speaks EWS SOAP on pytest-httpserver and is strict about what it is sent.

The `fake_ews` fixture keeps folders (root, msgfolderroot, inbox and named subfolders) and messages
in memory and answers GetFolder, FindFolder, FindItem, GetItem, UpdateItem and CreateItem (sending) in the shapes
recorded in shared/research/ews-fake.md. An operation, element, attribute or field it does not
know is recorded in `fake_ews.violations` and fails the test at teardown, so a change in what
exchangelib sends is caught instead of being answered wrongly.
"""
from __future__ import annotations

import base64
import itertools
import ssl
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from unittest import mock
from xml.etree import ElementTree as ET

import pytest
import spnego
import spnego.exceptions
from exchangelib.protocol import CachingProtocol
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.fakes.dovecot import make_certificate, openssl_path

EWS_PATH = "/EWS/Exchange.asmx"
NAMESPACES = {
    "s": "http://schemas.xmlsoap.org/soap/envelope/",
    "m": "http://schemas.microsoft.com/exchange/services/2006/messages",
    "t": "http://schemas.microsoft.com/exchange/services/2006/types",
    "e": "http://schemas.microsoft.com/exchange/services/2006/errors",
}
for _prefix, _uri in NAMESPACES.items():
    ET.register_namespace(_prefix, _uri)

# Item fields the fake can answer, in the order of ItemType then MessageType in the EWS schema
# (types.xsd); ItemId sits between MimeContent and the rest.
ITEM_FIELDS = ("item:MimeContent", "item:ItemId", "item:DateTimeReceived", "item:Size", "item:Categories",
               "message:IsRead")
# Folder fields in BaseFolderType then FolderType order.
FOLDER_FIELDS = ("folder:FolderId", "folder:ParentFolderId", "folder:FolderClass", "folder:DisplayName",
                 "folder:TotalCount", "folder:ChildFolderCount", "folder:EffectiveRights",
                 "folder:DistinguishedFolderId", "folder:PermissionSet", "folder:UnreadCount")
RIGHTS = ("CreateAssociated", "CreateContents", "CreateHierarchy", "Delete", "Modify", "Read", "ViewPrivateItems")
BUSY_TEXT = "The server cannot service this request right now. Try again later."


def q(name: str) -> str:
    """"t:Message" -> "{types namespace}Message"."""
    prefix, _, local = name.partition(":")
    return f"{{{NAMESPACES[prefix]}}}{local}"


def short(tag: str) -> str:
    """"{types namespace}Message" -> "t:Message", for violation messages."""
    for prefix, uri in NAMESPACES.items():
        if tag.startswith(f"{{{uri}}}"):
            return f"{prefix}:{tag[len(uri) + 2:]}"
    return tag


def xs_boolean(text: str | None) -> bool:
    """XML Schema boolean: exchangelib writes 1/0, others true/false (research note, pitfall 1)."""
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    raise Unsupported(f"{text!r} is not an xs:boolean")


class Unsupported(Exception):
    """Something in a request that this fake does not model."""


class ItemError(Exception):
    """An EWS error for one id of a request, answered in its response message."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code, self.text = code, text


NOT_FOUND = ("ErrorItemNotFound", "The specified object was not found in the store.")


@dataclass
class FakeFolder:
    id: str
    changekey: str
    name: str
    parent_id: str | None
    distinguished: str | None = None
    folder_class: str = "IPF.Note"


@dataclass
class FakeMessage:
    """One item as the mailbox holds it."""

    id: str
    changekey: str
    folder_id: str
    mime: bytes = field(repr=False)
    received: datetime
    is_read: bool = False
    categories: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.mime)


class KeepAliveRequestHandler(WSGIRequestHandler):
    """Werkzeug sends "Connection: close" on every answer, which exchangelib reads as ErrorServerBusy
    before looking at the status (research note, pitfall 2); leaving it out lets 401 and 503 through."""

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() != "connection":
            super().send_header(keyword, value)


class FakeEws:
    """An Exchange 2016 mailbox with Basic authentication at `url`."""

    username = "svc-jsm@example.test"
    password = "ews-Pa55word-9c1d"

    def __init__(self, server: HTTPServer, address: str = "support@example.test", cafile: str | None = None) -> None:
        self.url = server.url_for(EWS_PATH)
        self.cafile = cafile  # the certificate to trust when the server speaks HTTPS
        # OAuth: which Bearer tokens Exchange accepts (app-only EWS impersonates the mailbox:
        # learn.microsoft.com/exchange/client-developer/exchange-web-services/
        # how-to-authenticate-an-ews-application-by-using-oauth).
        self.bearer: Callable[[str], bool] | None = None
        # On-premises Exchange with NTLM only (the test sets NTLM_USER_FILE with DOMAIN:user:password lines).
        self.ntlm = False
        self.ntlm_logins: list[str] = []
        self._ntlm_context: spnego.ContextProxy | None = None
        self.address = address
        self.violations: list[str] = []
        self.operations: list[str] = []
        self.folders: dict[str, FakeFolder] = {}
        self.messages: dict[str, FakeMessage] = {}
        self._failures: list[int | str] = []
        self._hooks: dict[str, Callable[[], None]] = {}
        self.back_off_ms = 30_000
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._clock = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
        root = self._new_folder("root", None, "root")
        top = self._new_folder("Top of Information Store", root.id, "msgfolderroot")
        self._new_folder("Inbox", top.id, "inbox")
        self._new_folder("Sent Items", top.id, "sentitems")
        self.sent: list[bytes] = []  # MIME of every mail sent through CreateItem, as Exchange took it
        server.expect_request(EWS_PATH).respond_with_handler(self._dispatch)

    # ------------------------------------------------------------ for tests

    @property
    def inbox(self) -> FakeFolder:
        return self._distinguished("inbox")

    def add_folder(self, name: str, parent: str = "inbox") -> str:
        """A user folder under a distinguished folder; returns its id."""
        with self._lock:
            return self._new_folder(name, self._distinguished(parent).id).id

    def deliver(self, eml: bytes, read: bool = False, folder_id: str | None = None,
                categories: tuple[str, ...] = ()) -> str:
        """Put a mail into the inbox (or a folder) as the transport would; returns its item id."""
        with self._lock:
            self._clock += timedelta(minutes=1)
            item = FakeMessage(self._new_id("AAMkItem"), self._new_id("CQAAAB"), folder_id or self.inbox.id, eml,
                               self._clock, read, list(categories))
            self.messages[item.id] = item
            return item.id

    def message(self, item_id: str) -> FakeMessage:
        return self.messages[item_id]

    def delete(self, item_id: str) -> None:
        """Another client deletes the item."""
        with self._lock:
            del self.messages[item_id]

    def fail_next(self, failure: int | str) -> None:
        """Answer the next request with this HTTP status, or with a SOAP fault carrying this EWS error code."""
        with self._lock:
            self._failures.append(failure)

    def on_next(self, operation: str, action: Callable[[], None]) -> None:
        """Run `action` just before the next request for `operation` (e.g. "UpdateItem") is answered."""
        with self._lock:
            self._hooks[operation] = action

    def take_violations(self) -> list[str]:
        with self._lock:
            taken, self.violations = self.violations, []
            return taken

    # ------------------------------------------------------------ HTTP and SOAP

    def _dispatch(self, request: Request) -> Response:
        with self._lock:
            if self.ntlm:
                challenge = self._ntlm_challenge(request)
                if challenge is not None:
                    return challenge
            elif not self._authorised(request):
                return Response(status=401, headers={"WWW-Authenticate": 'Basic realm="fake-ews"'})
            if self._failures:
                return self._failure(self._failures.pop(0))
            try:
                operation = self._operation(request)
            except Unsupported as problem:
                self.violations.append(str(problem))
                return self._fault("ErrorSchemaValidation", str(problem))
            name = short(operation.tag).partition(":")[2]
            self.operations.append(name)
            if name in self._hooks:
                self._hooks.pop(name)()
            handler = self._handlers().get(operation.tag)
            try:
                if handler is None:
                    raise Unsupported(f"operation {name} is not modelled")
                body = handler(operation)
            except Unsupported as problem:
                self.violations.append(f"{name}: {problem}")
                return self._fault("ErrorSchemaValidation", str(problem))
            except ItemError as error:
                return self._fault(error.code, error.text)
            return self._soap(body)

    def _handlers(self) -> dict[str, Callable[[ET.Element], ET.Element]]:
        return {q("m:GetFolder"): self._get_folder, q("m:FindFolder"): self._find_folder,
                q("m:FindItem"): self._find_item, q("m:GetItem"): self._get_item,
                q("m:UpdateItem"): self._update_item, q("m:CreateItem"): self._create_item}

    def _ntlm_challenge(self, request: Request) -> Response | None:
        """NTLM as on-premises Exchange (MS-NLMP): no credentials -> 401 "NTLM"; NEGOTIATE -> 401 with the
        CHALLENGE; AUTHENTICATE checked against NTLM_USER_FILE by pyspnego -> None, the request goes on."""
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("NTLM "):
            return Response(status=401, headers={"WWW-Authenticate": "NTLM"})
        token = base64.b64decode(authorization.removeprefix("NTLM "))
        if self._ntlm_context is None:
            self._ntlm_context = spnego.server(protocol="ntlm")
        try:
            answer = self._ntlm_context.step(token)
        except spnego.exceptions.SpnegoError:
            self._ntlm_context = None
            return Response(status=401, headers={"WWW-Authenticate": "NTLM"})
        if not self._ntlm_context.complete:
            challenge = base64.b64encode(answer or b"").decode()
            return Response(status=401, headers={"WWW-Authenticate": f"NTLM {challenge}"})
        self.ntlm_logins.append(self._ntlm_context.client_principal or "")
        self._ntlm_context = None
        return None

    def _authorised(self, request: Request) -> bool:
        authorization = request.headers.get("Authorization", "")
        if self.bearer is not None and authorization.startswith("Bearer "):
            return self.bearer(authorization.removeprefix("Bearer "))
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return authorization == f"Basic {expected}"

    def _operation(self, request: Request) -> ET.Element:
        """The one element in s:Body, after checking the HTTP request and the SOAP header."""
        if request.method != "POST" or request.mimetype != "text/xml":
            raise Unsupported(f"{request.method} with {request.content_type!r}; EWS takes POSTed text/xml")
        try:
            envelope = ET.fromstring(request.get_data())
        except ET.ParseError as exc:
            raise Unsupported(f"request is not XML: {exc}") from exc
        expect(envelope, "s:Envelope", children={"s:Header", "s:Body"})
        header = envelope.find(q("s:Header"))
        if header is not None:
            expect(header, "s:Header", children={"t:RequestServerVersion", "t:TimeZoneContext",
                                                 "t:ExchangeImpersonation"})
            impersonated = header.find(f"{q('t:ExchangeImpersonation')}/{q('t:ConnectingSID')}/"
                                       f"{q('t:PrimarySmtpAddress')}")
            if header.find(q("t:ExchangeImpersonation")) is not None and (
                    impersonated is None or impersonated.text != self.address):
                raise Unsupported("ExchangeImpersonation must name the mailbox by its PrimarySmtpAddress")
            version = header.find(q("t:RequestServerVersion"))
            if version is None or version.get("Version") != "Exchange2016":
                raise Unsupported("RequestServerVersion is not Exchange2016 (the build 15.1 we configure)")
        body = envelope.find(q("s:Body"))
        if body is None or len(body) != 1:
            raise Unsupported("s:Body must hold exactly one operation")
        return body[0]

    def _soap(self, body: ET.Element) -> Response:
        envelope = ET.Element(q("s:Envelope"))
        ET.SubElement(envelope, q("s:Body")).append(body)
        return Response(ET.tostring(envelope, encoding="utf-8", xml_declaration=True),
                        content_type="text/xml; charset=utf-8")

    def _failure(self, failure: int | str) -> Response:
        if isinstance(failure, int):
            return Response(f"HTTP {failure}", status=failure, content_type="text/plain")
        return self._fault(failure, BUSY_TEXT if failure == "ErrorServerBusy" else failure)

    def _fault(self, code: str, text: str) -> Response:
        """A SOAP fault as Exchange sends it with HTTP 500; ErrorServerBusy carries BackOffMilliseconds
        (Microsoft Learn, "EWS throttling in Exchange")."""
        envelope = ET.Element(q("s:Envelope"))
        fault = ET.SubElement(ET.SubElement(envelope, q("s:Body")), q("s:Fault"))
        ET.SubElement(fault, "faultcode").text = f"a:{code}"
        ET.SubElement(fault, "faultstring").text = text
        detail = ET.SubElement(fault, "detail")
        ET.SubElement(detail, q("e:ResponseCode")).text = code
        ET.SubElement(detail, q("e:Message")).text = text
        if code == "ErrorServerBusy":
            xml = ET.SubElement(detail, q("t:MessageXml"))
            ET.SubElement(xml, q("t:Value"), Name="BackOffMilliseconds").text = str(self.back_off_ms)
        return Response(ET.tostring(envelope, encoding="utf-8", xml_declaration=True), status=500,
                        content_type="text/xml; charset=utf-8")

    # ------------------------------------------------------------ operations

    def _get_folder(self, op: ET.Element) -> ET.Element:
        expect(op, "m:GetFolder", children={"m:FolderShape", "m:FolderIds"})
        fields = self._shape(op.find(q("m:FolderShape")), FOLDER_FIELDS)
        messages = self._response("GetFolder")
        for ref in children(op, "m:FolderIds"):
            try:
                folder = self._folder_ref(ref)
            except ItemError as error:
                self._error(messages, "GetFolder", error, container="m:Folders")
                continue
            self._folder_xml(ET.SubElement(self._success(messages, "GetFolder"), q("m:Folders")), folder, fields)
        return messages.root

    def _find_folder(self, op: ET.Element) -> ET.Element:
        expect(op, "m:FindFolder", children={"m:FolderShape", "m:IndexedPageFolderView", "m:Restriction",
                                             "m:ParentFolderIds"}, attrs={"Traversal"})
        if op.get("Traversal") != "Shallow":
            raise Unsupported(f"Traversal={op.get('Traversal')!r}; only Shallow is modelled")
        fields = self._shape(op.find(q("m:FolderShape")), FOLDER_FIELDS)
        name = display_name_restriction(op.find(q("m:Restriction")))
        messages = self._response("FindFolder")
        for ref in children(op, "m:ParentFolderIds"):
            parent = self._folder_ref(ref)
            found = [f for f in self.folders.values()
                     if f.parent_id == parent.id and (name is None or f.name.casefold() == name.casefold())]
            page, offset, last = paged(op.find(q("m:IndexedPageFolderView")), found)
            root = ET.SubElement(self._success(messages, "FindFolder"), q("m:RootFolder"),
                                 IndexedPagingOffset=str(offset), TotalItemsInView=str(len(found)),
                                 IncludesLastItemInRange=xs(last))
            folders = ET.SubElement(root, q("t:Folders"))
            for folder in page:
                self._folder_xml(folders, folder, fields)
        return messages.root

    def _find_item(self, op: ET.Element) -> ET.Element:
        expect(op, "m:FindItem", children={"m:ItemShape", "m:IndexedPageItemView", "m:Restriction", "m:SortOrder",
                                           "m:ParentFolderIds"}, attrs={"Traversal"})
        if op.get("Traversal") != "Shallow":
            raise Unsupported(f"Traversal={op.get('Traversal')!r}; only Shallow is modelled")
        fields = self._shape(op.find(q("m:ItemShape")), ITEM_FIELDS)
        if "item:MimeContent" in fields:
            raise Unsupported("FindItem cannot return MimeContent (EWS: use GetItem)")
        wanted = is_read_restriction(op.find(q("m:Restriction")))
        newest_first = received_sort_order(op.find(q("m:SortOrder")))
        messages = self._response("FindItem")
        for ref in children(op, "m:ParentFolderIds"):
            folder = self._folder_ref(ref)
            found = sorted((m for m in self.messages.values()
                            if m.folder_id == folder.id and (wanted is None or m.is_read is wanted)),
                           key=lambda m: m.received, reverse=newest_first)
            page, offset, last = paged(op.find(q("m:IndexedPageItemView")), found)
            root = ET.SubElement(self._success(messages, "FindItem"), q("m:RootFolder"),
                                 IndexedPagingOffset=str(offset), TotalItemsInView=str(len(found)),
                                 IncludesLastItemInRange=xs(last))
            items = ET.SubElement(root, q("t:Items"))
            for item in page:
                self._item_xml(items, item, fields)
        return messages.root

    def _get_item(self, op: ET.Element) -> ET.Element:
        expect(op, "m:GetItem", children={"m:ItemShape", "m:ItemIds"})
        fields = self._shape(op.find(q("m:ItemShape")), ITEM_FIELDS)
        messages = self._response("GetItem")
        for ref in children(op, "m:ItemIds"):
            try:
                item = self._item_ref(ref)
            except ItemError as error:
                self._error(messages, "GetItem", error, container="m:Items")
                continue
            self._item_xml(ET.SubElement(self._success(messages, "GetItem"), q("m:Items")), item, fields)
        return messages.root

    def _update_item(self, op: ET.Element) -> ET.Element:
        expect(op, "m:UpdateItem", children={"m:ItemChanges"},
               attrs={"ConflictResolution", "MessageDisposition", "SuppressReadReceipts",
                      "SendMeetingInvitationsOrCancellations"})
        if op.get("MessageDisposition") not in (None, "SaveOnly"):
            raise Unsupported(f"MessageDisposition={op.get('MessageDisposition')!r} would send mail")
        if op.get("SendMeetingInvitationsOrCancellations") not in (None, "SendToNone"):
            raise Unsupported("UpdateItem would send meeting updates")
        messages = self._response("UpdateItem")
        for change in children(op, "m:ItemChanges"):
            expect(change, "t:ItemChange", children={"t:ItemId", "t:Updates"})
            try:
                item = self._item_ref(change.find(q("t:ItemId")), op.get("ConflictResolution"))
            except ItemError as error:
                self._error(messages, "UpdateItem", error, container="m:Items")
                continue
            for update in children(change, "t:Updates"):
                apply_update(item, update)
            item.changekey = self._new_id("CQAAAB")
            message = self._success(messages, "UpdateItem")
            ET.SubElement(ET.SubElement(ET.SubElement(message, q("m:Items")), q("t:Message")), q("t:ItemId"),
                          Id=item.id, ChangeKey=item.changekey)
            ET.SubElement(ET.SubElement(message, q("m:ConflictResults")), q("t:Count")).text = "0"
        return messages.root

    def _create_item(self, op: ET.Element) -> ET.Element:
        """Sending a whole MIME mail: CreateItem with SendAndSaveCopy into Sent Items (EWS CreateItem
        reference: a sent item's response carries no item id)."""
        expect(op, "m:CreateItem", children={"m:SavedItemFolderId", "m:Items"},
               attrs={"MessageDisposition", "SendMeetingInvitations"})
        if op.get("MessageDisposition") != "SendAndSaveCopy":
            raise Unsupported(f"MessageDisposition={op.get('MessageDisposition')!r}; only SendAndSaveCopy is modelled")
        [saved_in] = children(op, "m:SavedItemFolderId")
        folder = self._folder_ref(saved_in)
        messages = self._response("CreateItem")
        for item in children(op, "m:Items"):
            expect(item, "t:Message", children={"t:MimeContent", "t:Sensitivity", "t:Importance", "t:ReminderIsSet",
                                                "t:ReminderMinutesBeforeStart", "t:IsReadReceiptRequested",
                                                "t:IsDeliveryReceiptRequested", "t:IsRead", "t:IsResponseRequested"})
            mime = base64.b64decode(item.findtext(q("t:MimeContent")) or "")
            if not mime:
                raise Unsupported("CreateItem without MimeContent is not modelled")
            self.sent.append(mime)
            self._clock += timedelta(minutes=1)
            copy = FakeMessage(self._new_id("AAMkItem"), self._new_id("CQAAAB"), folder.id, mime, self._clock, True, [])
            self.messages[copy.id] = copy
            ET.SubElement(self._success(messages, "CreateItem"), q("m:Items"))
        return messages.root

    # ------------------------------------------------------------ request parts

    def _shape(self, shape: ET.Element | None, known: tuple[str, ...]) -> list[str]:
        """The FieldURIs an ItemShape or FolderShape asks for, in our answer order."""
        if shape is None:
            raise Unsupported("no ItemShape/FolderShape")
        expect(shape, short(shape.tag), children={"t:BaseShape", "t:AdditionalProperties"})
        base = shape.find(q("t:BaseShape"))
        if base is None or base.text != "IdOnly":
            raise Unsupported(f"BaseShape {None if base is None else base.text!r}; only IdOnly is modelled")
        asked = set()
        for uri in children(shape, "t:AdditionalProperties", missing_ok=True):
            expect(uri, "t:FieldURI", attrs={"FieldURI"})
            asked.add(uri.get("FieldURI"))
        unknown = asked - set(known)
        if unknown:
            raise Unsupported(f"fields not modelled: {sorted(unknown)}")
        return [f for f in known if f in asked]

    def _folder_ref(self, ref: ET.Element) -> FakeFolder:
        if ref.tag == q("t:DistinguishedFolderId"):
            expect(ref, "t:DistinguishedFolderId", children={"t:Mailbox"}, attrs={"Id"})
            address = ref.findtext(f"{q('t:Mailbox')}/{q('t:EmailAddress')}")
            if address is not None and address.casefold() != self.address.casefold():
                raise ItemError("ErrorNonExistentMailbox", f"No mailbox with such guid or address: {address}")
            try:
                return self._distinguished(ref.get("Id", ""))
            except KeyError:
                raise Unsupported(f"distinguished folder {ref.get('Id')!r} is not modelled") from None
        expect(ref, "t:FolderId", attrs={"Id", "ChangeKey"})
        if ref.get("Id") not in self.folders:
            raise ItemError("ErrorFolderNotFound", "The specified folder could not be found in the store.")
        return self.folders[ref.get("Id")]

    def _item_ref(self, ref: ET.Element | None, conflict_resolution: str | None = None) -> FakeMessage:
        if ref is None:
            raise Unsupported("no t:ItemId")
        expect(ref, "t:ItemId", attrs={"Id", "ChangeKey"})
        item = self.messages.get(ref.get("Id", ""))
        if item is None:
            raise ItemError(*NOT_FOUND)
        stale = ref.get("ChangeKey") not in (None, item.changekey)
        # EWS UpdateItem: a stale ChangeKey conflicts unless ConflictResolution is AutoResolve or AlwaysOverwrite.
        if stale and conflict_resolution == "NeverOverwrite":
            raise ItemError("ErrorIrresolvableConflict", "The send or update operation could not be performed "
                                                         "because the change key passed in the request does not "
                                                         "match the current change key for the item.")
        return item

    # ------------------------------------------------------------ answers

    def _response(self, operation: str) -> Responses:
        root = ET.Element(q(f"m:{operation}Response"))
        return Responses(root, ET.SubElement(root, q("m:ResponseMessages")))

    @staticmethod
    def _success(messages: Responses, operation: str) -> ET.Element:
        message = ET.SubElement(messages.list, q(f"m:{operation}ResponseMessage"), ResponseClass="Success")
        ET.SubElement(message, q("m:ResponseCode")).text = "NoError"
        return message

    @staticmethod
    def _error(messages: Responses, operation: str, error: ItemError, container: str) -> None:
        message = ET.SubElement(messages.list, q(f"m:{operation}ResponseMessage"), ResponseClass="Error")
        ET.SubElement(message, q("m:MessageText")).text = error.text
        ET.SubElement(message, q("m:ResponseCode")).text = error.code
        ET.SubElement(message, q("m:DescriptiveLinkKey")).text = "0"
        ET.SubElement(message, q(container))

    def _folder_xml(self, parent: ET.Element, folder: FakeFolder, fields: list[str]) -> None:
        element = ET.SubElement(parent, q("t:Folder"))
        values: dict[str, Callable[[], ET.Element | str]] = {
            "folder:FolderId": lambda: folder_id_xml("t:FolderId", folder.id, folder.changekey),
            "folder:ParentFolderId": lambda: folder_id_xml("t:ParentFolderId", *self._parent_ids(folder)),
            "folder:FolderClass": lambda: folder.folder_class,
            "folder:DisplayName": lambda: folder.name,
            "folder:TotalCount": lambda: str(sum(m.folder_id == folder.id for m in self.messages.values())),
            "folder:ChildFolderCount": lambda: str(sum(f.parent_id == folder.id for f in self.folders.values())),
            "folder:EffectiveRights": lambda: effective_rights_xml(),
            "folder:DistinguishedFolderId": lambda: folder.distinguished or "",
            "folder:PermissionSet": lambda: permission_set_xml(),
            "folder:UnreadCount": lambda: str(sum(m.folder_id == folder.id and not m.is_read
                                                  for m in self.messages.values())),
        }
        for name in (f for f in FOLDER_FIELDS if f in fields or f == "folder:FolderId"):
            if ((name == "folder:ParentFolderId" and folder.parent_id is None)
                    or (name == "folder:DistinguishedFolderId" and folder.distinguished is None)):
                continue
            append_value(element, name, values[name]())

    def _item_xml(self, parent: ET.Element, item: FakeMessage, fields: list[str]) -> None:
        element = ET.SubElement(parent, q("t:Message"))
        for name in (f for f in ITEM_FIELDS if f in fields or f == "item:ItemId"):
            if name == "item:MimeContent":
                mime = ET.SubElement(element, q("t:MimeContent"), CharacterSet="UTF-8")
                mime.text = base64.b64encode(item.mime).decode("ascii")
            elif name == "item:ItemId":
                ET.SubElement(element, q("t:ItemId"), Id=item.id, ChangeKey=item.changekey)
            elif name == "item:DateTimeReceived":
                ET.SubElement(element, q("t:DateTimeReceived")).text = item.received.strftime("%Y-%m-%dT%H:%M:%SZ")
            elif name == "item:Size":
                ET.SubElement(element, q("t:Size")).text = str(item.size)
            elif name == "item:Categories" and item.categories:  # Exchange leaves out an empty list
                strings = ET.SubElement(element, q("t:Categories"))
                for category in item.categories:
                    ET.SubElement(strings, q("t:String")).text = category
            elif name == "message:IsRead":
                ET.SubElement(element, q("t:IsRead")).text = xs(item.is_read)

    # ------------------------------------------------------------ state

    def _new_id(self, prefix: str) -> str:
        # Exchange ids are base64 with "+", "/" and "="; ours start with "+/" so nobody may treat them as words.
        return base64.b64encode(b"\xfb\xff" + f"{prefix}{next(self._ids):04d}".encode()).decode("ascii")

    def _new_folder(self, name: str, parent_id: str | None, distinguished: str | None = None) -> FakeFolder:
        folder = FakeFolder(self._new_id("AQMkFolder"), self._new_id("AQAAAB"), name, parent_id, distinguished)
        self.folders[folder.id] = folder
        return folder

    def _distinguished(self, name: str) -> FakeFolder:
        for folder in self.folders.values():
            if folder.distinguished == name:
                return folder
        raise KeyError(name)

    def _parent_ids(self, folder: FakeFolder) -> tuple[str, str]:
        parent = self.folders[folder.parent_id or ""]
        return parent.id, parent.changekey


@dataclass
class Responses:
    root: ET.Element
    list: ET.Element


def expect(element: ET.Element, name: str, children: Collection[str] = (), attrs: Collection[str] = ()) -> None:
    """Raise Unsupported unless `element` is `name` with only the given child elements and attributes."""
    if element.tag != q(name):
        raise Unsupported(f"expected {name}, got {short(element.tag)}")
    extra_children = {short(c.tag) for c in element} - set(children)
    extra_attrs = set(element.attrib) - set(attrs)
    if extra_children or extra_attrs:
        raise Unsupported(f"{name} has what the fake does not model: "
                          f"elements {sorted(extra_children)}, attributes {sorted(extra_attrs)}")


def children(parent: ET.Element, name: str, missing_ok: bool = False) -> list[ET.Element]:
    container = parent.find(q(name))
    if container is None:
        if missing_ok:
            return []
        raise Unsupported(f"{short(parent.tag)} has no {name}")
    return list(container)


def constant_of(restriction: ET.Element | None, field_uri: str) -> str | None:
    """The constant of a Restriction that is exactly IsEqualTo(field_uri, constant); None without one."""
    if restriction is None:
        return None
    expect(restriction, "m:Restriction", children={"t:IsEqualTo"})
    is_equal = restriction[0]
    expect(is_equal, "t:IsEqualTo", children={"t:FieldURI", "t:FieldURIOrConstant"})
    uri, value = is_equal.find(q("t:FieldURI")), is_equal.find(q("t:FieldURIOrConstant"))
    if uri is None or uri.get("FieldURI") != field_uri or value is None or len(value) != 1:
        raise Unsupported(f"restriction other than IsEqualTo({field_uri}, constant)")
    expect(value[0], "t:Constant", attrs={"Value"})
    return value[0].get("Value")


def is_read_restriction(restriction: ET.Element | None) -> bool | None:
    value = constant_of(restriction, "message:IsRead")
    return None if value is None else xs_boolean(value)


def display_name_restriction(restriction: ET.Element | None) -> str | None:
    return constant_of(restriction, "folder:DisplayName")


def received_sort_order(sort: ET.Element | None) -> bool:
    """True for newest first; only sorting by DateTimeReceived is modelled."""
    if sort is None:
        return False
    expect(sort, "m:SortOrder", children={"t:FieldOrder"})
    order = sort[0]
    expect(order, "t:FieldOrder", children={"t:FieldURI"}, attrs={"Order"})
    uri = order.find(q("t:FieldURI"))
    if len(sort) != 1 or uri is None or uri.get("FieldURI") != "item:DateTimeReceived":
        raise Unsupported("sort order other than by item:DateTimeReceived")
    return order.get("Order") == "Descending"


def paged(view: ET.Element | None, found: list) -> tuple[list, int, bool]:
    """The page an IndexedPageItemView/IndexedPageFolderView asks for, the next offset, and whether it is the last."""
    if view is None:
        return found, len(found), True
    expect(view, short(view.tag), attrs={"MaxEntriesReturned", "Offset", "BasePoint"})
    if view.get("BasePoint", "Beginning") != "Beginning":
        raise Unsupported("paging from the end is not modelled")
    offset = int(view.get("Offset", "0"))
    page = found[offset:offset + int(view.get("MaxEntriesReturned", str(len(found))))]
    return page, offset + len(page), offset + len(page) >= len(found)


def apply_update(item: FakeMessage, update: ET.Element) -> None:
    """One SetItemField or DeleteItemField on IsRead or Categories."""
    uri = update.find(q("t:FieldURI"))
    field_uri = None if uri is None else uri.get("FieldURI")
    if update.tag == q("t:DeleteItemField"):
        expect(update, "t:DeleteItemField", children={"t:FieldURI"})
        if field_uri != "item:Categories":
            raise Unsupported(f"DeleteItemField of {field_uri}")
        item.categories = []
        return
    expect(update, "t:SetItemField", children={"t:FieldURI", "t:Message"})
    message = update.find(q("t:Message"))
    if message is None or len(message) != 1:
        raise Unsupported("SetItemField without exactly one value in t:Message")
    if field_uri == "message:IsRead":
        expect(message[0], "t:IsRead")
        item.is_read = xs_boolean(message[0].text)
    elif field_uri == "item:Categories":
        expect(message[0], "t:Categories", children={"t:String"})
        item.categories = [s.text or "" for s in message[0]]
    else:
        raise Unsupported(f"SetItemField of {field_uri}")


def folder_id_xml(name: str, folder_id: str, changekey: str) -> ET.Element:
    return ET.Element(q(name), Id=folder_id, ChangeKey=changekey)


def effective_rights_xml() -> ET.Element:
    """Full rights, as the mailbox owner has on its own folders."""
    rights = ET.Element(q("t:EffectiveRights"))
    for right in RIGHTS:
        ET.SubElement(rights, q(f"t:{right}")).text = "true"
    return rights


def permission_set_xml() -> ET.Element:
    """No delegates: an empty permission list."""
    permission_set = ET.Element(q("t:PermissionSet"))
    ET.SubElement(permission_set, q("t:Permissions"))
    return permission_set


def append_value(parent: ET.Element, field_uri: str, value: ET.Element | str) -> None:
    """A folder field as its element: "folder:DisplayName" -> <t:DisplayName>value</t:DisplayName>."""
    if isinstance(value, ET.Element):
        parent.append(value)
    else:
        ET.SubElement(parent, q(f"t:{field_uri.partition(':')[2]}")).text = value


def xs(value: bool) -> str:
    return "true" if value else "false"


def start_server(ssl_context: ssl.SSLContext | None = None) -> HTTPServer:
    """An HTTP(S) server on a free loopback port, started with Werkzeug's Connection: close left out."""
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=ssl_context)
    with mock.patch("pytest_httpserver.httpserver.make_server",
                    partial(make_server, request_handler=KeepAliveRequestHandler)):
        server.start()
    return server


@pytest.fixture(scope="session")
def ews_server() -> Iterator[HTTPServer]:
    server = start_server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ews_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HTTPServer, str]]:
    """The same over HTTPS with a self-signed certificate for 127.0.0.1, and that certificate's file."""
    directory = tmp_path_factory.mktemp("ews-tls")
    cafile = make_certificate(openssl_path(), directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cafile, directory / "key.pem")
    server = start_server(context)
    yield server, str(cafile)
    server.stop()


def serve_fake(server: HTTPServer, cafile: str | None = None) -> Iterator[FakeEws]:
    """A fresh mailbox on `server`; fails the test at teardown on anything it does not model."""
    server.clear()
    fake = FakeEws(server, cafile=cafile)
    yield fake
    # exchangelib caches one Protocol per (endpoint, credentials); every test reuses the server's port.
    CachingProtocol.clear_cache()
    server.check_handler_errors()
    assert not fake.violations, "fake_ews saw requests it does not model:\n" + "\n".join(fake.violations)


@pytest.fixture
def fake_ews(ews_server: HTTPServer) -> Iterator[FakeEws]:
    """A fake Exchange mailbox over plain HTTP for one test."""
    yield from serve_fake(ews_server)


@pytest.fixture
def fake_ews_tls(ews_tls_server: tuple[HTTPServer, str]) -> Iterator[FakeEws]:
    """A fake Exchange mailbox over HTTPS for one test; `.cafile` is the certificate to trust."""
    server, cafile = ews_tls_server
    yield from serve_fake(server, cafile=cafile)
