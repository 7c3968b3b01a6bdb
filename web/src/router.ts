/**
 * Views are addressed by the URL fragment (#/messages?state=failed), so the server serves one static page, a view
 * can be bookmarked and reloaded, and the browser's back button works.
 */
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  /** '/messages', '/messages/12', ... */
  path: string;
  params: URLSearchParams;
}

export function currentRoute(): Route {
  const hash = location.hash.replace(/^#/, '') || '/dashboard';
  const [path = '/dashboard', search = ''] = hash.split('?', 2);
  return { path, params: new URLSearchParams(search) };
}

export function href(path: string, params?: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params ?? {})) if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  const text = search.toString();
  return `#${path}${text ? `?${text}` : ''}`;
}

export function navigate(path: string, params?: Record<string, string | number | undefined | null>): void {
  location.hash = href(path, params);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const changed = (): void => setRoute(currentRoute());
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return route;
}
