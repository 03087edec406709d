// The tour: real REST calls on the ground2cloud instance, each printed with its answer and
// checked, so that `--once` fails (naming the step) when an answer is not what a user expects.
import type { Answer, ApiClient } from './api.js';
import { bold, cyan, dim, formatBody, green, heading, line, red, StepError } from './print.js';

type Row = Record<string, unknown>;

const q = (params: Record<string, string | number>) =>
  `?${Object.entries(params)
    .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`)
    .join('&')}`;

function show(answer: Answer, sent?: unknown): void {
  line(`  ${bold(`${answer.method} ${decodeURIComponent(answer.path)}`)}`);
  if (sent !== undefined) line(dim(`    ${JSON.stringify(sent)}`));
  const colour = answer.status < 400 ? green : red;
  const count = answer.headers.get('elements-returned-count');
  const next = answer.headers.get('elements-next-page-token');
  const extra = [
    count !== null ? `elements-returned-count: ${count}` : '',
    next ? `elements-next-page-token: ${next.length > 24 ? `${next.slice(0, 24)}...` : next}` : '',
  ].filter(Boolean);
  line(
    `  -> ${colour(String(answer.status))} ${dim(`${answer.ms.toFixed(0)} ms`)}${extra.length ? `  ${dim(extra.join('  '))}` : ''}`,
  );
  if (answer.body !== undefined && answer.body !== '') line(formatBody(answer.body));
}

async function tourStep(title: string, run: () => Promise<void>): Promise<void> {
  heading(title);
  try {
    await run();
  } catch (err) {
    throw new StepError(`tour: ${title}`, err);
  }
}

function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(what);
}

async function expectCall(api: ApiClient, status: number, method: string, path: string, body?: unknown) {
  const answer = await api.call(method, path, body);
  show(answer, body);
  if (answer.status !== status) {
    const b = answer.body as { code?: string; message?: string } | undefined;
    throw new Error(`expected ${status}, got ${answer.status}${b?.message ? `: ${b.code ?? ''} ${b.message}` : ''}`);
  }
  return answer;
}

/** Runs every step; throws StepError naming the first that fails. */
export async function runTour(api: ApiClient): Promise<void> {
  const fields = 'id,first_name,last_name,email,status';

  await tourStep('1. ping the instance (the database answers through the tunnel)', async () => {
    const { body } = await expectCall(api, 200, 'GET', '/ping');
    check((body as Row).connection === 'ground2cloud', 'ping did not report connection ground2cloud');
  });

  await tourStep('2. list with a where: customers of account 8', async () => {
    const path = `/contacts${q({ where: "status = 'customer' AND account_id = 8", fields, orderBy: 'id' })}`;
    const { body } = await expectCall(api, 200, 'GET', path);
    const rows = body as Row[];
    check(Array.isArray(rows) && rows.length > 0, 'expected some customers of account 8');
    check(
      rows.every((r) => r.status === 'customer'),
      'a row that is not a customer came back',
    );
  });

  await tourStep('3. paging: 3 contacts a page, then the next page by its token', async () => {
    const first = await expectCall(api, 200, 'GET', `/contacts${q({ fields, orderBy: 'id', pageSize: 3 })}`);
    const token = first.headers.get('elements-next-page-token');
    check((first.body as Row[]).length === 3, 'the first page does not hold 3 rows');
    check(token, 'the first page has no elements-next-page-token header');
    line();
    const second = await expectCall(
      api,
      200,
      'GET',
      `/contacts${q({ fields, orderBy: 'id', pageSize: 3, nextPage: token })}`,
    );
    const a = first.body as Row[];
    const b = second.body as Row[];
    check(b.length === 3 && Number(b[0]!.id) > Number(a[2]!.id), 'the second page does not follow the first');
  });

  let id: unknown;
  const email = `grace.demo.${Date.now()}@example.com`;
  await tourStep('4. create a contact', async () => {
    const sent = { account_id: 1, first_name: 'Grace', last_name: 'Demo', email, title: 'Engineer' };
    const { body } = await expectCall(api, 200, 'POST', '/contacts', sent);
    const row = body as Row;
    check(row.email === email && row.id !== undefined, 'the stored row was not returned');
    check(row.status === 'lead', 'the column default (status lead) was not filled in');
    id = row.id;
  });

  await tourStep(`5. update it`, async () => {
    const { body } = await expectCall(api, 200, 'PATCH', `/contacts/${id}`, { status: 'customer', title: 'CTO' });
    check((body as Row).status === 'customer' && (body as Row).title === 'CTO', 'the update is not in the answer');
  });

  await tourStep('6. retrieve it', async () => {
    const { body } = await expectCall(api, 200, 'GET', `/contacts/${id}`);
    check((body as Row).email === email && (body as Row).title === 'CTO', 'the row read back differs');
  });

  await tourStep('7. delete it; reading it again is 404', async () => {
    await expectCall(api, 200, 'DELETE', `/contacts/${id}`);
    line();
    await expectCall(api, 404, 'GET', `/contacts/${id}`);
  });

  await tourStep('8. an error: a contact for an account that does not exist', async () => {
    const sent = {
      account_id: 999999,
      first_name: 'No',
      last_name: 'Account',
      email: `nobody.${Date.now()}@example.com`,
    };
    const { body } = await expectCall(api, 409, 'POST', '/contacts', sent);
    check(
      typeof (body as Row).message === 'string' && (body as Row).requestId,
      'the error body lacks message or requestId',
    );
    line(dim(`  (${cyan('409')}: the foreign key contacts.account_id -> accounts.id refused it, as PostgreSQL said)`));
  });
}
