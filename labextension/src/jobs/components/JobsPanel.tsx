import { TranslationBundle } from '@jupyterlab/translation';
import { Button, closeIcon } from '@jupyterlab/ui-components';
import React, { useEffect, useLayoutEffect, useRef } from 'react';

import { Empty, ErrorBanner, Loading, TransContext } from '../../datalake/components/common';
import { PolledPanel } from '../../components/PolledPanel';
import { IJob } from '../../tokens';
import { duration, isActive, jobTitle, JobsModel, resourcesText, STATES } from '../model';
import { useChanged } from '../../components/useChanged';

/** The badge's colour family of a state. */
const STATE_CLASS: Record<string, string> = {
  pending: 'wait',
  submitted: 'wait',
  queued: 'wait',
  preparing: 'wait',
  running: 'run',
  succeeded: 'ok',
  failed: 'bad',
  cancelled: 'none',
  lost: 'bad'
};

/** The service's states as the filter names them. */
function stateWords(trans: TranslationBundle): Record<(typeof STATES)[number], string> {
  return {
    pending: trans.__('pending'),
    submitted: trans.__('submitted'),
    queued: trans.__('queued'),
    preparing: trans.__('preparing'),
    running: trans.__('running'),
    succeeded: trans.__('succeeded'),
    failed: trans.__('failed'),
    cancelled: trans.__('cancelled'),
    lost: trans.__('lost')
  };
}

function when(iso: string | null | undefined): string {
  if (!iso) {
    return '—';
  }
  const d = new Date(iso);
  const today = new Date();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return d.toDateString() === today.toDateString()
    ? time
    : `${d.toLocaleDateString([], { day: 'numeric', month: 'short' })} ${time}`;
}

/** The state badge: the service's sentence, in the site's words. */
function StateBadge(props: { job: IJob }): JSX.Element {
  const { job } = props;
  return (
    <span
      className={`itw-jobs-badge itw-jobs-badge-${STATE_CLASS[job.state] ?? 'none'}`}
      data-testid="itw-jobs-state"
      data-state={job.state}
      title={job.reason ? `${job.sentence} (${job.reason})` : job.sentence}
    >
      {job.sentence}
    </span>
  );
}

function JobRow(props: { job: IJob; model: JobsModel }): JSX.Element {
  const { job, model } = props;
  const trans = model.trans;
  const open = model.log?.job.id === job.id;
  const res = resourcesText(job, trans);
  const dur = duration(job);
  return (
    <li
      className={`itw-jobs-row${open ? ' itw-jobs-selected' : ''}`}
      data-testid="itw-jobs-row"
      data-job={job.id}
      data-server={job.server_name}
      data-state={job.state}
    >
      <div className="itw-jobs-line">
        <span className="itw-jobs-name" title={job.pod}>
          {jobTitle(job, trans)}
        </span>
        <StateBadge job={job} />
      </div>
      <div className="itw-jobs-meta">
        <span data-testid="itw-jobs-site">{job.site_name}</span>
        <span>{job.kind === 'notebook' ? trans.__('notebook') : trans.__('batch cell')}</span>
        {res && <span>{res}</span>}
        {job.batch_job && (
          <span data-testid="itw-jobs-batch">{trans.__('batch job %1', job.batch_job)}</span>
        )}
      </div>
      <div className="itw-jobs-meta itw-jobs-times">
        <span title={trans.__('submitted')}>{trans.__('submitted %1', when(job.submitted))}</span>
        {job.started && <span>{trans.__('started %1', when(job.started))}</span>}
        {job.finished && <span>{trans.__('finished %1', when(job.finished))}</span>}
        {dur && <span title={trans.__('duration')}>{dur}</span>}
      </div>
      {job.note && (
        <div className="itw-jobs-note" data-testid="itw-jobs-note">
          {job.note}
        </div>
      )}
      {!isActive(job) && (job.exit_code !== null || job.reason) && job.state === 'failed' && (
        <div className="itw-jobs-note">
          {[
            job.exit_code !== null && job.exit_code !== undefined
              ? trans.__('exit code %1', job.exit_code)
              : '',
            job.reason ?? ''
          ]
            .filter(Boolean)
            .join(' · ')}
        </div>
      )}
      <div className="itw-jobs-actions">
        <Button
          small
          minimal
          data-testid="itw-jobs-logs"
          onClick={() => model.openLog(job)}
          title={
            isActive(job)
              ? trans.__("Follow this job's log")
              : trans.__("This job's last log lines")
          }
        >
          {trans.__('Logs')}
        </Button>
        {job.kind === 'batch-cell' && job.notebook_path && (
          <Button
            small
            minimal
            data-testid="itw-jobs-open-cell"
            onClick={() => void model.openCell(job)}
            title={job.notebook_path}
          >
            {trans.__('Open the notebook at that cell')}
          </Button>
        )}
        {isActive(job) && (
          <Button
            small
            minimal
            className="itw-jobs-cancel"
            data-testid="itw-jobs-cancel"
            onClick={() => void model.cancel(job)}
          >
            {trans.__('Cancel')}
          </Button>
        )}
      </div>
    </li>
  );
}

function Filters(props: { model: JobsModel }): JSX.Element {
  const { model } = props;
  const trans = model.trans;
  const f = model.filters;
  return (
    <div className="itw-jobs-filters">
      <input
        type="search"
        className="itw-jobs-search"
        data-testid="itw-jobs-search"
        placeholder={trans.__('Search jobs')}
        aria-label={trans.__('Search jobs')}
        value={f.search}
        onChange={e => model.setFilters({ search: e.target.value })}
      />
      <select
        data-testid="itw-jobs-filter-site"
        aria-label={trans.__('Site')}
        value={f.site}
        onChange={e => model.setFilters({ site: e.target.value })}
      >
        <option value="">{trans.__('All sites')}</option>
        {model.siteChoices.map(s => (
          <option key={s.slug} value={s.slug}>
            {s.name}
          </option>
        ))}
      </select>
      <select
        data-testid="itw-jobs-filter-state"
        aria-label={trans.__('State')}
        value={f.state}
        onChange={e => model.setFilters({ state: e.target.value })}
      >
        <option value="">{trans.__('All states')}</option>
        <option value="active">{trans.__('active')}</option>
        <option value="ended">{trans.__('ended')}</option>
        {STATES.map(s => (
          <option key={s} value={s}>
            {stateWords(trans)[s]}
          </option>
        ))}
      </select>
      <select
        data-testid="itw-jobs-filter-kind"
        aria-label={trans.__('Kind')}
        value={f.kind}
        onChange={e => model.setFilters({ kind: e.target.value as '' })}
      >
        <option value="">{trans.__('All kinds')}</option>
        <option value="notebook">{trans.__('notebook servers')}</option>
        <option value="batch-cell">{trans.__('batch cells')}</option>
      </select>
    </div>
  );
}

function LogView(props: { model: JobsModel }): JSX.Element | null {
  const { model } = props;
  const trans = model.trans;
  const log = model.log;
  const pre = useRef<HTMLPreElement>(null);
  const stick = useRef(true);
  useLayoutEffect(() => {
    // a followed log stays scrolled to its end unless the user scrolled up
    if (pre.current && stick.current) {
      pre.current.scrollTop = pre.current.scrollHeight;
    }
  });
  if (!log) {
    return null;
  }
  return (
    <section className="itw-jobs-log" data-testid="itw-jobs-log" data-job={log.job.id}>
      <header className="itw-jobs-log-head">
        <span className="itw-jobs-log-title">
          {trans.__('Log of %1 at %2', jobTitle(log.job, trans), log.job.site_name)}
        </span>
        <span className="itw-jobs-log-state" data-testid="itw-jobs-log-state">
          {log.following ? trans.__('following') : trans.__('last lines')}
        </span>
        <Button
          small
          minimal
          data-testid="itw-jobs-log-close"
          title={trans.__('Close the log')}
          onClick={() => model.closeLog()}
        >
          <closeIcon.react tag="span" />
        </Button>
      </header>
      {log.status.kind === 'error' && (
        <ErrorBanner
          message={log.status.message}
          onRetry={() => model.openLog(log.job)}
          testid="itw-jobs-log-error"
        />
      )}
      {log.status.kind === 'loading' && log.text === '' ? (
        <Loading what={trans.__('Asking the site for the log…')} testid="itw-jobs-log-loading" />
      ) : (
        <pre
          ref={pre}
          className="itw-jobs-log-text"
          data-testid="itw-jobs-log-text"
          onScroll={e => {
            const el = e.currentTarget;
            stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
          }}
        >
          {log.text || (log.status.kind === 'ready' ? trans.__('(the log is empty)') : '')}
        </pre>
      )}
    </section>
  );
}

function Section(props: {
  title: string;
  jobs: IJob[];
  model: JobsModel;
  testid: string;
}): JSX.Element | null {
  if (props.jobs.length === 0) {
    return null;
  }
  return (
    <section className="itw-jobs-section">
      <h3 className="itw-jobs-section-title">{props.title}</h3>
      <ul className="itw-jobs-list" data-testid={props.testid}>
        {props.jobs.map(j => (
          <JobRow key={j.id} job={j} model={props.model} />
        ))}
      </ul>
    </section>
  );
}

function Lists(props: { model: JobsModel; trans: TranslationBundle }): JSX.Element {
  const { model, trans } = props;
  const { status, historyStatus } = model;
  if (status.kind === 'error' && model.active.length === 0 && model.history.length === 0) {
    return (
      <ErrorBanner
        message={status.message}
        onRetry={() => void model.refresh().catch(() => undefined)}
        testid="itw-jobs-error"
      />
    );
  }
  if (status.kind === 'loading' || status.kind === 'idle') {
    return <Loading what={trans.__('Asking the intertwin service…')} testid="itw-jobs-loading" />;
  }
  const active = model.shownActive;
  const history = model.shownHistory;
  const filtered =
    model.filters.search !== '' ||
    model.filters.site !== '' ||
    model.filters.kind !== '' ||
    model.filters.state !== '';
  return (
    <>
      {status.kind === 'error' && (
        <ErrorBanner
          message={status.message}
          onRetry={() => void model.refresh().catch(() => undefined)}
          testid="itw-jobs-error"
        />
      )}
      <Section title={trans.__('Active')} jobs={active} model={model} testid="itw-jobs-active" />
      <Section title={trans.__('History')} jobs={history} model={model} testid="itw-jobs-history" />
      {active.length === 0 &&
        history.length === 0 &&
        historyStatus.kind !== 'loading' &&
        (filtered ? (
          <Empty testid="itw-jobs-empty">{trans.__('No job of yours matches.')}</Empty>
        ) : (
          <Empty testid="itw-jobs-empty">
            {trans.__(
              'No jobs yet. The notebook servers you start and the cells you offload to a site appear here.'
            )}
          </Empty>
        ))}
      {historyStatus.kind === 'error' && (
        <ErrorBanner
          message={historyStatus.message}
          onRetry={() => void model.loadHistory(model.history.length === 0)}
          testid="itw-jobs-history-error"
        />
      )}
      {historyStatus.kind === 'loading' && (
        <Loading what={trans.__('Loading the history…')} testid="itw-jobs-history-loading" />
      )}
      {model.historyNext && historyStatus.kind === 'ready' && (
        <Button
          small
          className="itw-jobs-more"
          data-testid="itw-jobs-more"
          onClick={() => void model.loadHistory()}
        >
          {trans.__('Older jobs')}
        </Button>
      )}
    </>
  );
}

export function JobsView(props: { model: JobsModel }): JSX.Element {
  const { model } = props;
  const bump = useChanged(model.changed);
  useEffect(() => {
    // durations of running jobs move on between polls
    const timer = window.setInterval(bump, 30_000);
    return () => {
      window.clearInterval(timer);
    };
  }, [bump]);
  const trans = model.trans;
  const running = model.active.filter(j => j.state === 'running').length;
  return (
    <TransContext.Provider value={trans}>
      <div className="itw-sidebar-body itw-jobs" data-testid="itw-jobs">
        <header className="itw-dl-head">
          <h2 className="itw-title">{trans.__('Jobs')}</h2>
          <span className="itw-dl-who" data-testid="itw-jobs-count">
            {model.status.kind === 'ready' ? trans._n('%1 running', '%1 running', running) : ''}
          </span>
        </header>
        <Filters model={model} />
        {model.actionStatus.kind === 'error' && (
          <ErrorBanner message={model.actionStatus.message} testid="itw-jobs-action-error" />
        )}
        <div className={`itw-jobs-lists${model.log ? ' itw-jobs-with-log' : ''}`}>
          <Lists model={model} trans={trans} />
        </div>
        <LogView model={model} />
      </div>
    </TransContext.Provider>
  );
}

/** The "Jobs" left-sidebar panel. */
export class JobsPanel extends PolledPanel<JobsModel> {
  constructor(model: JobsModel) {
    super(model, 'itw-sidebar-panel', 'itw-jobs-panel');
  }

  render(): JSX.Element {
    return <JobsView model={this.model} />;
  }
}
