import { URLExt } from '@jupyterlab/coreutils';
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { ServerConnection } from '@jupyterlab/services';
import { Button, downloadIcon, refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import React, { useEffect, useRef, useState } from 'react';

import { Empty, ErrorBanner, Loading, TransContext } from '../../datalake/components/common';
import { PolledPanel } from '../../components/PolledPanel';
import { API_NAMESPACE, IUsageJob } from '../../tokens';
import {
  gpuHours,
  hours,
  IBudgetBar,
  measuredCpuHours,
  METRICS,
  UNITS,
  UsageMetric,
  UsageModel
} from '../model';
import { useChanged } from '../../components/useChanged';

/** JupyterLab's Vega-Lite 5 renderer (`@jupyterlab/vega5-extension`) draws the chart. */
export const VEGALITE_MIME = 'application/vnd.vegalite.v5+json';

function day(iso: string | null | undefined): string {
  if (!iso) {
    return '—';
  }
  return new Date(iso).toLocaleDateString([], { day: 'numeric', month: 'short' });
}

/**
 * The chart, rendered by the Vega-Lite renderer JupyterLab has for notebook outputs, as wide as
 * the sidebar (measured: Vega-Lite's `width: "container"` reads 0 inside a renderer that is not
 * laid out yet), drawn again when the sidebar's width changes.
 */
function Chart(props: {
  spec: Record<string, unknown>;
  rendermime: IRenderMimeRegistry | null;
  noRenderer: string;
}): JSX.Element {
  const host = useRef<HTMLDivElement>(null);
  const [failed, setFailed] = useState<string | null>(null);
  const [width, setWidth] = useState(0);
  const { spec, rendermime } = props;
  const canRender = !!rendermime && rendermime.mimeTypes.includes(VEGALITE_MIME);
  useEffect(() => {
    const el = host.current;
    if (!el) {
      return;
    }
    const measure = (): void => {
      // in steps of 20 px, so dragging the sidebar does not redraw at every pixel
      setWidth(Math.floor(el.clientWidth / 20) * 20);
    };
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, [canRender]);
  // drawn again only when the data, the choice or the width changed, not on every poll
  const key = JSON.stringify({ ...spec, width: Math.max(160, width), height: 160 });
  useEffect(() => {
    if (!canRender || !host.current || width === 0) {
      return;
    }
    const renderer = rendermime!.createRenderer(VEGALITE_MIME);
    let gone = false;
    Widget.attach(renderer, host.current);
    renderer
      .renderModel(new MimeModel({ data: { [VEGALITE_MIME]: JSON.parse(key) } }))
      .then(() => setFailed(null))
      .catch(e => {
        if (!gone) {
          setFailed(String(e));
        }
      });
    return () => {
      gone = true;
      if (renderer.isAttached) {
        Widget.detach(renderer);
      }
      renderer.dispose();
    };
  }, [key, rendermime, canRender, width]);
  if (!canRender) {
    return <Empty testid="itw-usage-no-chart">{props.noRenderer}</Empty>;
  }
  return (
    <>
      <div className="itw-usage-chart" ref={host} data-testid="itw-usage-chart" />
      {failed && <ErrorBanner message={failed} />}
    </>
  );
}

function BudgetBar(props: { bar: IBudgetBar; model: UsageModel }): JSX.Element {
  const { bar, model } = props;
  const t = model.trans;
  const b = bar.budget;
  const what = bar.what === 'gpu' ? t.__('GPU hours') : t.__('CPU-core hours');
  return (
    <li
      className={`itw-usage-budget itw-usage-budget-${b.state}`}
      data-testid="itw-usage-budget"
      data-site={b.site}
      data-state={b.state}
    >
      <div className="itw-usage-budget-line">
        <span className="itw-usage-budget-name">
          {t.__('%1 · %2 · %3', b.site_name, b.vo, what)}
        </span>
        <span className="itw-usage-budget-figures" data-testid="itw-usage-budget-figures">
          {t.__('%1 / %2 h', hours(bar.used), hours(bar.total))}
        </span>
      </div>
      <div
        className="itw-usage-bar"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={bar.total}
        aria-valuenow={bar.used}
        aria-label={what}
      >
        <div className="itw-usage-bar-fill" style={{ width: `${bar.fraction * 100}%` }} />
      </div>
      <div className="itw-usage-budget-sentence" data-testid="itw-usage-budget-sentence">
        {b.sentence}
      </div>
    </li>
  );
}

function SiteTable(props: { model: UsageModel }): JSX.Element {
  const { model } = props;
  const t = model.trans;
  const totals = model.summary!.totals;
  return (
    <div className="itw-usage-scroll">
      <table className="itw-usage-table" data-testid="itw-usage-sites">
        <thead>
          <tr>
            <th>{t.__('Site')}</th>
            <th title={t.__('allocated CPU cores × hours')}>{t.__('CPU-core h')}</th>
            <th title={t.__('GPU hours by GPU model')}>{t.__('GPU h')}</th>
            <th title={t.__('allocated memory (GB) × hours')}>{t.__('Memory GB-h')}</th>
            <th>{t.__('Wall h')}</th>
          </tr>
        </thead>
        <tbody>
          {model.sites.map(s => (
            <tr key={s.site} data-testid="itw-usage-site" data-site={s.site}>
              <td>
                {s.siteName}
                {s.estimated && (
                  <span
                    className="itw-usage-estimated"
                    title={t.__(
                      "A job's end was not seen (it vanished while the service was down): its figures rest on the best known end."
                    )}
                  >
                    {' *'}
                  </span>
                )}
              </td>
              <td>{hours(s.cpuCoreHours)}</td>
              <td data-testid="itw-usage-gpu">
                {s.gpuHours.length === 0
                  ? '—'
                  : s.gpuHours.map(g => (
                      <div key={g.model}>{t.__('%1 %2', g.model, hours(g.hours))}</div>
                    ))}
              </td>
              <td>{hours(s.memoryGbHours)}</td>
              <td>{hours(s.wallHours)}</td>
            </tr>
          ))}
        </tbody>
        {model.sites.length > 1 && (
          <tfoot>
            <tr>
              <td>{t.__('All sites')}</td>
              <td>{hours(totals.cpu_core_hours)}</td>
              <td>{hours(gpuHours(totals))}</td>
              <td>{hours(totals.memory_gb_hours)}</td>
              <td>{hours(totals.wall_hours)}</td>
            </tr>
          </tfoot>
        )}
      </table>
    </div>
  );
}

function JobsTable(props: { model: UsageModel }): JSX.Element {
  const { model } = props;
  const t = model.trans;
  const gpuText = (j: IUsageJob): string => {
    const h = gpuHours(j);
    return h > 0 ? t.__('%1 %2', j.gpu_model ?? t.__('GPU'), hours(h)) : '—';
  };
  return (
    <div className="itw-usage-scroll">
      <table className="itw-usage-table itw-usage-jobs" data-testid="itw-usage-jobs">
        <thead>
          <tr>
            <th>{t.__('Job')}</th>
            <th>{t.__('GPU h')}</th>
            <th>{t.__('CPU-core h')}</th>
            <th>{t.__('Wall h')}</th>
          </tr>
        </thead>
        <tbody>
          {model.jobs.map(j => (
            <tr
              key={j.id}
              className="itw-usage-job"
              data-testid="itw-usage-job"
              data-job={j.id}
              tabIndex={0}
              title={t.__('Show this job in the Jobs panel')}
              onClick={() => model.openJob(j)}
              onKeyDown={e => {
                if (e.key === 'Enter') {
                  model.openJob(j);
                }
              }}
            >
              <td>
                <div>{j.site_name}</div>
                <div className="itw-usage-sub">
                  {j.kind === 'notebook' ? t.__('notebook') : t.__('batch cell')} · {day(j.start)}
                </div>
              </td>
              <td>{gpuText(j)}</td>
              <td>
                <div>{hours(j.cpu_core_hours)}</div>
                {measuredCpuHours(j) !== null && (
                  <div
                    className="itw-usage-sub"
                    data-testid="itw-usage-measured"
                    title={t.__(
                      'CPU time the site measured (%1), beside the allocation above',
                      j.measured?.source ?? ''
                    )}
                  >
                    {t.__('used %1', hours(measuredCpuHours(j)!))}
                  </div>
                )}
              </td>
              <td>{hours(j.wall_hours)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function UsageView(props: {
  model: UsageModel;
  rendermime: IRenderMimeRegistry | null;
}): JSX.Element {
  const { model, rendermime } = props;
  useChanged(model.changed);
  const t = model.trans;
  const { status, summary } = model;
  const unitWords = { day: t.__('Day'), week: t.__('Week'), month: t.__('Month') };
  const csvHref =
    URLExt.join(ServerConnection.makeSettings().baseUrl, API_NAMESPACE, 'usage.csv') +
    model.csvQuery;
  const month = summary
    ? new Date(summary.from).toLocaleDateString([], {
        month: 'long',
        year: 'numeric',
        timeZone: 'UTC'
      })
    : '';
  const spec = model.chartSpec();
  const bars = model.budgetBars;
  return (
    <TransContext.Provider value={t}>
      <div className="itw-usage" data-testid="itw-usage">
        <div className="itw-usage-head">
          <h3 className="itw-usage-title">{month ? t.__('Usage · %1', month) : t.__('Usage')}</h3>
          <Button
            small
            minimal
            data-testid="itw-usage-refresh"
            title={t.__('Ask again')}
            onClick={() => void model.refresh().catch(() => undefined)}
          >
            <refreshIcon.react tag="span" />
          </Button>
          <a
            className="itw-usage-csv"
            data-testid="itw-usage-csv"
            href={csvHref}
            download
            title={t.__("This month's jobs and their usage, one row per job (CSV)")}
          >
            <downloadIcon.react tag="span" elementPosition="left" />
            {t.__('CSV')}
          </a>
        </div>
        {status.kind === 'loading' && <Loading what={t.__('Asking for your usage…')} />}
        {status.kind === 'error' && (
          <ErrorBanner
            message={status.message}
            testid="itw-usage-error"
            onRetry={() => void model.refresh().catch(() => undefined)}
          />
        )}
        {bars.length > 0 && (
          <section>
            <h4>{t.__('Budgets')}</h4>
            <ul className="itw-usage-budgets">
              {bars.map(bar => (
                <BudgetBar key={bar.key} bar={bar} model={model} />
              ))}
            </ul>
          </section>
        )}
        {model.budgetStatus.kind === 'error' && status.kind !== 'error' && (
          <ErrorBanner message={model.budgetStatus.message} />
        )}
        {summary && model.isEmpty && (
          <Empty testid="itw-usage-empty">
            {t.__(
              'Nothing used yet this month. The notebook servers and batch cells you run at the sites count here, with what they were given (CPU cores, memory, GPUs) for as long as they ran.'
            )}
          </Empty>
        )}
        {summary && !model.isEmpty && (
          <>
            <section>
              <h4>{t.__('This month by site')}</h4>
              <SiteTable model={model} />
            </section>
            <section>
              <div className="itw-usage-chart-head">
                <h4>{t.__('Over time')}</h4>
                <select
                  aria-label={t.__('What the chart shows')}
                  data-testid="itw-usage-metric"
                  value={model.shownMetric}
                  onChange={e => model.setMetric(e.target.value as UsageMetric)}
                >
                  {METRICS.map(m => (
                    <option key={m} value={m}>
                      {model.metricLabel(m)}
                    </option>
                  ))}
                </select>
                <div className="itw-usage-units" role="group" aria-label={t.__('Buckets')}>
                  {UNITS.map(u => (
                    <button
                      key={u}
                      className={`itw-usage-unit${model.unit === u ? ' itw-usage-unit-on' : ''}`}
                      aria-pressed={model.unit === u}
                      data-testid={`itw-usage-unit-${u}`}
                      onClick={() => model.setUnit(u)}
                    >
                      {unitWords[u]}
                    </button>
                  ))}
                </div>
              </div>
              {model.seriesStatus.kind === 'loading' && !spec && (
                <Loading what={t.__('Asking for the chart…')} />
              )}
              {model.seriesStatus.kind === 'error' && (
                <ErrorBanner message={model.seriesStatus.message} />
              )}
              {spec && (
                <Chart
                  spec={spec}
                  rendermime={rendermime}
                  noRenderer={t.__(
                    "This JupyterLab has no Vega-Lite renderer (@jupyterlab/vega5-extension is disabled), so the chart can't be drawn."
                  )}
                />
              )}
            </section>
            <section>
              <h4>{t.__('Most expensive jobs')}</h4>
              <JobsTable model={model} />
            </section>
          </>
        )}
      </div>
    </TransContext.Provider>
  );
}

/** The Usage sidebar panel. */
export class UsagePanel extends PolledPanel<UsageModel> {
  constructor(
    model: UsageModel,
    readonly rendermime: IRenderMimeRegistry | null
  ) {
    super(model, 'itw-usage-panel');
  }

  render(): JSX.Element {
    return <UsageView model={this.model} rendermime={this.rendermime} />;
  }
}
