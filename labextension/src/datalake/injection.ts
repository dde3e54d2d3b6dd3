import { Kernel } from '@jupyterlab/services';

import { ApiError, datalakeAPI, didPath } from '../request';
import { DataLakeAnswer, IRucioAttachment } from '../tokens';

/** rucio-jupyterlab's comm, so its kernel extension (in existing images) answers too. */
export const KERNEL_COMM = 'rucio-jupyterlab:kernel';

/**
 * The frontend's comm target of rucio-jupyterlab: `resolve_dids()` in the kernel (ours or
 * rucio-jupyterlab's) sends `request-inject` on it; rucio-jupyterlab's kernel side also sends
 * its `ack-inject` there.
 */
export const FRONTEND_COMM = 'rucio-jupyterlab:frontend';

/** Answer `resolve_dids()` from `kernel` by calling `inject` (idempotent per kernel). */
export function answerResolveDids(kernel: Kernel.IKernelConnection, inject: () => void): void {
  kernel.registerCommTarget(FRONTEND_COMM, comm => {
    comm.onMsg = msg => {
      const data = msg.content.data as { action?: string };
      if (data.action === 'request-inject') {
        inject();
      }
    };
  });
}

/** Our kernel side; silent, and harmless where it is missing (rucio-jupyterlab's may be there). */
const LOAD_KERNEL_EXTENSION = [
  'try:',
  "    get_ipython().run_line_magic('load_ext', 'intertwin_lab.datalake.kernel')",
  'except Exception:',
  '    pass'
].join('\n');

/** One variable to set in the kernel: rucio-jupyterlab's `inject` entry, field for field. */
export interface IInjection {
  type: 'file' | 'collection';
  variableName: string;
  did: string;
  didAvailable: boolean;
  files: { path: string; pfn: string | null }[] | null;
}

type PathsPage = DataLakeAnswer<'listPaths'>;

const PAGE = 1000;

/** The local paths of an attachment's files at this site, read page by page from the API. */
export async function resolveAttachment(a: IRucioAttachment): Promise<IInjection> {
  const [scope, ...rest] = a.did.split(':');
  const name = rest.join(':');
  const files: { path: string; pfn: string | null }[] = [];
  let complete = true;
  let cursor: string | null | undefined;
  try {
    while (cursor !== null) {
      const page: PathsPage = await datalakeAPI<PathsPage>(`${didPath(scope, name)}/paths`, {
        cursor,
        limit: PAGE,
        // every page in order: the server streams one replica listing of the whole DID
        whole: 'true'
      });
      for (const item of page.items) {
        if (item.state === 'NOT_A_FILE') {
          continue;
        }
        if (item.path) {
          files.push({ path: item.path, pfn: item.pfn });
        } else {
          complete = false;
        }
      }
      cursor = page.next;
    }
  } catch (e) {
    // a site without scratch has no local paths: the variable says "not available here"
    if (!(e instanceof ApiError && e.code === 'no_scratch')) {
      throw e;
    }
    complete = false;
  }
  const available = complete && files.length > 0;
  return {
    type: a.type,
    variableName: a.variableName,
    did: a.did,
    didAvailable: available,
    files: a.type === 'file' && !available ? null : files
  };
}

/**
 * Set the variables in `kernel` over the comm; resolves to the names the kernel acknowledged
 * (rucio-jupyterlab's kernel side acknowledges elsewhere: then the names sent).
 */
export async function injectIntoKernel(
  kernel: Kernel.IKernelConnection,
  injections: IInjection[]
): Promise<string[]> {
  if (injections.length === 0) {
    return [];
  }
  // loaded first, and waited for: JupyterLab may send comm messages over a kernel subshell,
  // which the kernel handles alongside (not after) a running execute request
  await kernel.requestExecute({ code: LOAD_KERNEL_EXTENSION, silent: true, store_history: false })
    .done;
  const comm = kernel.createComm(KERNEL_COMM);
  let acked: string[] | null = null;
  let closed = false;
  comm.onMsg = msg => {
    const data = msg.content.data as { action?: string; variable_names?: string[] };
    if (data.action === 'ack-inject') {
      acked = data.variable_names ?? [];
    }
  };
  comm.onClose = () => {
    closed = true;
  };
  const refused = new Error(
    `The ${kernel.name} kernel cannot take DataLake variables: it has no "${KERNEL_COMM}" ` +
      'handler (a Python kernel with intertwin-hub or rucio-jupyterlab installed has one).'
  );
  try {
    await comm.open().done;
    if (closed) {
      throw refused;
    }
    // the kernel handles the message before it goes idle, so an acknowledgement is in by then
    await comm.send({ action: 'inject', dids: injections as any }).done;
  } catch (e) {
    throw closed ? refused : e;
  } finally {
    if (!closed && !comm.isDisposed) {
      comm.close();
    }
  }
  if (closed && acked === null) {
    throw refused;
  }
  return acked ?? injections.map(i => i.variableName);
}

/** Resolve the attachments and set them in the kernel; a sentence for the user. */
export async function injectAttachments(
  kernel: Kernel.IKernelConnection,
  attachments: IRucioAttachment[]
): Promise<string> {
  const injections = await Promise.all(attachments.map(resolveAttachment));
  const names = await injectIntoKernel(kernel, injections);
  const waiting = injections.filter(i => !i.didAvailable).map(i => i.variableName);
  const set = names.filter(n => !waiting.includes(n));
  const parts: string[] = [];
  if (set.length > 0) {
    parts.push(
      `${set.join(', ')} ${set.length === 1 ? 'holds its' : 'hold their'} local paths in the kernel.`
    );
  }
  if (waiting.length > 0) {
    parts.push(
      `${waiting.join(', ')}: not at this site yet; make ${waiting.length === 1 ? 'it' : 'them'} available and the kernel gets the paths when ready.`
    );
  }
  return parts.join(' ');
}
