// The attributes of a CLIENT span to a backend server, shared by request and job tracing.
import type { Attributes } from '@opentelemetry/api';
import { ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT, ATTR_SLUICE_BACKEND_SERVER, ATTR_URL_FULL } from './attributes.js';

export function backendAttributes(serverUrl: string, pathAndQuery: string): Attributes {
  const url = new URL(serverUrl);
  const base = url.pathname.replace(/\/$/, '');
  return {
    [ATTR_URL_FULL]: `${url.origin}${base}${pathAndQuery}`,
    [ATTR_SERVER_ADDRESS]: url.hostname,
    [ATTR_SERVER_PORT]: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
    [ATTR_SLUICE_BACKEND_SERVER]: serverUrl,
  };
}

