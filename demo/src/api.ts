// A small client for the relay's REST API, used by the start-up steps and the tour. It keeps
// each answer's status, headers and JSON body together, and never logs a secret.

export interface Answer {
  method: string;
  path: string;
  status: number;
  headers: Headers;
  body: unknown;
  ms: number;
}

export class ApiClient {
  constructor(
    /** e.g. `http://127.0.0.1:8080/elements/api-v2` */
    readonly base: string,
    /** The Authorization header value. */
    readonly authorization: string,
  ) {}

  with(authorization: string): ApiClient {
    return new ApiClient(this.base, authorization);
  }

  async call(method: string, path: string, body?: unknown): Promise<Answer> {
    const started = performance.now();
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers: {
        authorization: this.authorization,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return {
      method,
      path,
      status: response.status,
      headers: response.headers,
      body: parsed,
      ms: performance.now() - started,
    };
  }

  /** Like call(), but an unexpected status is an error quoting the API's message. */
  async expect(status: number | number[], method: string, path: string, body?: unknown): Promise<Answer> {
    const answer = await this.call(method, path, body);
    const ok = Array.isArray(status) ? status : [status];
    if (!ok.includes(answer.status)) throw new UnexpectedAnswer(answer, ok);
    return answer;
  }
}

export class UnexpectedAnswer extends Error {
  readonly code = 'ERR_UNEXPECTED_ANSWER';
  constructor(
    readonly answer: Answer,
    expected: number[],
  ) {
    const b = answer.body as { code?: string; message?: string } | undefined;
    const why = b && typeof b === 'object' ? `${b.code ?? ''} ${b.message ?? ''}`.trim() : String(answer.body ?? '');
    super(`${answer.method} ${answer.path} answered ${answer.status} (expected ${expected.join(' or ')}): ${why}`);
  }
}
