// jira.js (Version3Client + AgileClient) against a sandbox site, with the calls a backup or admin script
// makes. Run by tests/sandbox/test_clients.py: node jira_js_client.mjs <site url> <email> <token>.
// Prints one JSON line: what each call returned (the test checks it), and every address a socket reached.
import diagnostics_channel from "node:diagnostics_channel";
import { AgileClient, Version3Client } from "jira.js";

const [url, email, apiToken] = process.argv.slice(2);
const reached = new Set();
diagnostics_channel.subscribe("net.client.socket", ({ socket }) => {
  socket.once("connect", () => reached.add(`${socket.remoteAddress}:${socket.remotePort}`));
});

const config = { host: url, authentication: { basic: { email, apiToken } } };
const jira = new Version3Client(config);
const agile = new AgileClient(config);
const out = {};

async function step(name, fn) {
  try {
    out[name] = await fn();
  } catch (e) {
    const status = e?.status ?? e?.response?.status ?? e?.cause?.status;
    const detail = e?.response?.data ?? e?.cause?.response?.data ?? String(e?.message ?? e);
    out[name] = { error: `${status ?? "?"} ${JSON.stringify(detail).slice(0, 400)}` };
  }
}

const project = process.argv[5] || "PLAT";

await step("myself", async () => (await jira.myself.getCurrentUser()).emailAddress);
await step("fields", async () => (await jira.issueFields.getFields()).length);
await step("search", async () => {
  const keys = [];
  let nextPageToken;
  let pages = 0;
  do {
    const page = await jira.issueSearch.searchForIssuesUsingJqlEnhancedSearch({
      jql: `project = ${project} ORDER BY key ASC`,
      fields: ["summary", "status"],
      maxResults: 7,
      nextPageToken,
    });
    keys.push(...page.issues.map((i) => i.key));
    nextPageToken = page.nextPageToken;
    pages += 1;
  } while (nextPageToken && pages < 50);
  return { keys, pages };
});
await step("searchPost", async () => {
  const page = await jira.issueSearch.searchForIssuesUsingJqlEnhancedSearchPost({
    jql: `project = ${project}`,
    fields: ["key"],
    maxResults: 5,
  });
  return page.issues.length;
});
await step("count", async () => (await jira.issueSearch.countIssues({ jql: `project = ${project}` })).count);
const first = `${project}-3`;
await step("issue", async () => {
  const issue = await jira.issues.getIssue({ issueIdOrKey: first, expand: ["changelog", "renderedFields", "names"] });
  return {
    key: issue.key,
    descriptionType: issue.fields.description?.type ?? null,
    histories: issue.changelog.histories.length,
    rendered: typeof issue.renderedFields?.description,
  };
});
await step("comments", async () => (await jira.issueComments.getComments({ issueIdOrKey: first })).total);
await step("worklogs", async () => (await jira.issueWorklogs.getIssueWorklog({ issueIdOrKey: first })).total);
await step("changelog", async () => (await jira.issues.getChangeLogs({ issueIdOrKey: first })).total);
await step("create", async () => {
  const created = await jira.issues.createIssue({
    fields: {
      project: { key: project },
      issuetype: { name: "Task" },
      summary: "made by jira.js",
      description: { type: "doc", version: 1, content: [{ type: "paragraph", content: [{ type: "text", text: "adf in" }] }] },
    },
  });
  return created.key;
});
const key = out.create;
await step("comment", async () => {
  await jira.issueComments.addComment({ issueIdOrKey: key, comment: "a comment from jira.js" });
  const page = await jira.issueComments.getComments({ issueIdOrKey: key });
  return page.comments[0].body.content[0].content[0].text;
});
await step("worklog", async () => {
  await jira.issueWorklogs.addWorklog({
    issueIdOrKey: key,
    timeSpent: "1h 30m",
    started: "2026-03-01T09:00:00.000+0100",
    comment: "worked",
  });
  const w = (await jira.issueWorklogs.getIssueWorklog({ issueIdOrKey: key })).worklogs[0];
  return { seconds: w.timeSpentSeconds, started: w.started };
});
await step("attach", async () => {
  const added = await jira.issueAttachments.addAttachment({
    issueIdOrKey: key,
    attachment: { filename: "名前 (1).txt", file: Buffer.from("bytes from jira.js"), mimeType: "text/plain" },
  });
  return { id: added[0].id, filename: added[0].filename };
});
await step("download", async () => {
  const data = await jira.issueAttachments.getAttachmentContent({ id: out.attach.id });
  return Buffer.from(data).toString("utf8");
});
await step("transition", async () => {
  const { transitions } = await jira.issues.getTransitions({ issueIdOrKey: key });
  const done = transitions.find((t) => t.to.name === "Done");
  await jira.issues.doTransition({ issueIdOrKey: key, transition: { id: done.id } });
  return (await jira.issues.getIssue({ issueIdOrKey: key, fields: ["status"] })).fields.status.name;
});
await step("delete", async () => {
  await jira.issues.deleteIssue({ issueIdOrKey: key });
  try {
    await jira.issues.getIssue({ issueIdOrKey: key });
    return "still there";
  } catch (e) {
    return e?.status ?? e?.response?.status ?? e?.cause?.status ?? "gone";
  }
});
await step("boards", async () => (await agile.board.getAllBoards()).values.map((b) => b.name));
await step("sprints", async () => {
  const board = (await agile.board.getAllBoards({ projectKeyOrId: project })).values[0];
  const sprints = (await agile.board.getAllSprints({ boardId: board.id })).values;
  const issues = await agile.sprint.getIssuesForSprint({ sprintId: sprints[0].id, maxResults: 5 });
  return { sprints: sprints.map((s) => s.name), issues: issues.total };
});

out.reached = [...reached];
console.log(JSON.stringify(out));
