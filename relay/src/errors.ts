// The relay's error catalogue. Every HTTP error leaves the relay as
//   {"requestId": "...", "message": "...", "code": "...", "providerMessage"?: "..."}
// with the status below. Callers branch on `code`, never on the message.

export const ERRORS = {
  bad_request: 400,
  invalid_json: 400,
  invalid_parameter: 400,
  invalid_where: 400,
  invalid_page_token: 400,
  invalid_value: 400,
  not_null_violation: 400,
  check_violation: 400,
  invalid_configuration: 400,
  unauthorized: 401,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  unique_violation: 409,
  foreign_key_violation: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  bad_gateway: 502,
  not_allowed: 502,
  connect_refused: 502,
  connect_timeout: 502,
  dns_failed: 502,
  unreachable: 502,
  database_unavailable: 502,
  tunnel_offline: 503,
  timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class ApiError extends Error {
  readonly status: number;
  /** Response headers to add (e.g. Retry-After). */
  headers?: Record<string, string>;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly providerMessage?: string,
    options?: { status?: number; headers?: Record<string, string>; cause?: unknown },
  ) {
    super(message, { cause: options?.cause });
    this.status = options?.status ?? ERRORS[code];
    this.headers = options?.headers;
  }

  toBody(requestId: string): Record<string, string> {
    const body: Record<string, string> = { requestId, message: this.message, code: this.code };
    if (this.providerMessage) body.providerMessage = this.providerMessage;
    return body;
  }
}
