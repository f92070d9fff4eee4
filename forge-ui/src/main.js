// jsm-mail's pages in Jira: the admin page shows every link of the site, a project's settings page
// the links into its service desk. Data comes from jsm-mail through Forge Remote (invokeRemote);
// which page asks is in the Forge Invocation Token, so the path only picks the answer's shape.
// https://developer.atlassian.com/platform/forge/apis-reference/ui-api-bridge/invokeRemote/
import { invokeRemote, view } from '@forge/bridge';

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text ?? '';
  if (className) td.className = className;
  return td;
}

function showLinks(links) {
  const rows = document.getElementById('link-rows');
  for (const link of links) {
    const row = rows.insertRow();
    cell(row, link.name);
    cell(row, `${link.mailbox} (${link.folder})`);
    cell(row, link.service_desk_id);
    cell(row, link.request_type_id);
    const state = link.status === 'ok' ? 'working' : `failing since ${link.failing_since}: ${link.error}`;
    cell(row, state, link.status);
  }
  document.getElementById('links').hidden = false;
}

function showLog(entries) {
  const rows = document.getElementById('log-rows');
  for (const entry of entries) {
    const row = rows.insertRow();
    cell(row, entry.time.replace('T', ' ').slice(0, 19));
    cell(row, entry.link);
    cell(row, entry.from);
    cell(row, entry.subject);
    cell(row, entry.reason ? `${entry.outcome} (${entry.reason})` : entry.outcome);
    cell(row, entry.issue_key);
    cell(row, entry.detail);
  }
  document.getElementById('log').hidden = false;
}

async function main() {
  const state = document.getElementById('state');
  const context = await view.getContext();
  const onDesk = context.extension.type === 'jira:projectSettingsPage';
  const answer = await invokeRemote({ path: onDesk ? '/forge/ui/desk' : '/forge/ui/site', method: 'GET' });
  const body = answer.body ?? {};
  if (answer.status !== 200) {
    state.textContent = `jsm-mail cannot answer (${answer.status}): ${body.error ?? 'no reason given'}`;
    state.className = 'error';
    return;
  }
  document.getElementById('title').textContent = onDesk ? `Mail links into ${body.project}` : 'Mail links';
  state.textContent = body.links.length
    ? `${body.links.length} link(s) on ${body.site}.`
    : 'No mailbox is linked here yet: add one on jsm-mail\'s own admin pages.';
  showLinks(body.links);
  showLog(body.log);
}

main().catch((error) => {
  const state = document.getElementById('state');
  state.textContent = `jsm-mail cannot be reached: ${error.message ?? error}`;
  state.className = 'error';
});
