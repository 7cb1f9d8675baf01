// Loading one thing for a component: data, error (the envelope's message), a reload.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { userMessage } from "../api/envelope";

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);
  const run = useCallback(() => {
    const mine = ++generation.current;
    setLoading(true);
    setError(null);
    load()
      .then((value) => {
        if (mine === generation.current) setData(value);
      })
      .catch((e: unknown) => {
        if (mine === generation.current) setError(userMessage(e));
      })
      .finally(() => {
        if (mine === generation.current) setLoading(false);
      });
  }, deps);
  useEffect(() => {
    run();
    return () => {
      generation.current++;
    };
  }, [run]);
  return { data, error, loading, reload: run };
}
